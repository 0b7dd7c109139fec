// Package cluster starts Manta members on a Proto.Actor cluster and places
// model actors on them (docs/ARCHITECTURE.md §3–4): providers (local:
// in-process, the embedded default; etcd: several processes; automanaged;
// k8s),
// a quiet logger, and Manta's IdentityLookup, the default for every
// provider.
//
// Start and StartClient return errors instead of panicking (protoactor's
// StartMember panics on provider errors), and Shutdown never panics
// (protoactor's Shutdown does on a client).
//
//	cfg := cluster.DefaultConfig()          // local provider, 127.0.0.1
//	cfg.Provider, cfg.Etcd = cluster.ProviderEtcd, []string{"127.0.0.1:2379"}
//	cfg.Source = host.PlacementSource()     // memory, rates, estimates (actors.Host)
//	m, err := cluster.Start(ctx, cfg, kinds...)
//
// # Placement
//
// Every member runs a placement actor ("manta-placement") with two roles.
// As a directory it owns the identities whose rendezvous owner it is
// (protoactor's disthash rule, so it is the member disthash would have
// activated them on): the first lookup of an identity estimates its memory
// (Source.Estimate, from the manifest), chooses a member with
// placement.Choose over the gossiped loads of the members that can fit it
// (cold models by memory alone, ⌈√n⌉ candidates), asks that member to
// activate it, records where it went and answers every later lookup with
// it. Lookups of one identity from anywhere reach the one directory, so
// concurrent first requests cause one activation. When every member's
// budget is held by activations, the model still goes to the member with
// the most room whose budget can hold it: that member asks its idle
// activations to release their models (they stay cached, evictable) and
// its cache enforces the budget. Only a model larger than every member's
// budget is answered too_large, naming the largest budget.
//
// As an activator it spawns the activations placed on its member (after
// checking they fit its budget beside its other activations: a member
// refuses, and the directory chooses again, unless every member is full), tells their directory when they stop,
// and re-announces all of them to their owners after every topology
// change. A new owner holds first activations until every member has
// re-announced (at most PlacementConfig.HandOffGrace); a directory that
// hears of two activations of one identity keeps the one it knew (unless
// the other is clearly older) and stops the other. Topology changes stop nothing: entries on members that left are
// dropped, and the next request activates the model on a survivor.
//
// Anti-entropy: every 2 s each activator also re-announces its live
// activations to their owners (Announce.periodic). A directory with the same
// topology view that owns the identity records an activation it did not
// know and stops one that differs from the activation it hands out (the
// target of a move under way excepted). This catches the duplicates no
// hand-off sees: an activation whose answer reached its directory after the
// directory had given up on it, an announcement lost to a member that was
// being killed. A duplicate therefore lives at most a round or two once the
// members' views agree. The rounds also confirm the activation a directory
// hands out: if none has shown it for three rounds (it stopped and its
// Terminated was lost) while another member announces a live one, the
// directory takes the live one instead of stopping it.
//
// Remote connections: protoactor's endpoint writer dials a new gRPC
// ClientConn for each of its connect retries and closes only the last, and
// an unclosed ClientConn reconnects forever. Members dial with an
// interceptor (closeFailedConns) that closes a conn whose stream failed
// before the connect handshake answered, so members that die or restart on
// new ports leave no connections and goroutines behind in the survivors.
//
// No wait on another member lasts longer than FailureDetection: lookups
// and activations give up on a member that does not answer (and on one
// that leaves), and try again; Member.Alive lets the SDK resend requests
// whose target's member left.
//
// Every member gossips its load a few times a second (protoactor gossip,
// key "manta.load"): budget, used, pinned and active bytes, models loaded,
// request rate and each activation's size and rate, plus its placement
// counters. The member with the lowest id is the leader: every
// RebalanceConfig.Interval it gives models hotter than HotRate replicas
// id@1..id@k on other members (within a manifest's min_replicas and
// max_replicas, read through the Source's ReplicaBounder) (callers spread over them with Member.Route,
// power of two choices on outstanding requests) and runs the rebalancer
// (placement.Planner: hysteresis, at most K moves, cool-down), whose moves
// the directories carry out make-before-break: activate and load on the
// target, switch the entry, stop the old activation.
//
// Member.Where and Member.Loads answer `manta where` and `manta status`.
package cluster
