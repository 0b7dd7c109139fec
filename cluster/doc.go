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
// and after every topology change announces to their new owners the ones
// whose directory owner changed (with rendezvous ownership, those of the
// members that left or joined). A new owner holds first activations until
// every member has announced (at most PlacementConfig.HandOffGrace); a directory that
// hears of two activations of one identity keeps the one it knew (unless
// the other is clearly older) and stops the other. Topology changes stop nothing: entries on members that left are
// dropped, and the next request activates the model on a survivor.
//
// Anti-entropy: each activator also re-announces its live activations to
// their owners (Announce.periodic): the ones younger than 5 s on every
// 250 ms tick, and all of them once per PlacementConfig.AntiEntropy (10 s),
// a slice on each tick, so no tick walks them all. A directory with the same
// topology view that owns the identity records an activation it did not
// know and stops one that differs from the activation it hands out (the
// target of a move under way excepted). This catches the duplicates no
// hand-off sees: an activation whose answer reached its directory after the
// directory had given up on it, an announcement lost to a member that was
// being killed. A duplicate therefore lives at most a round or two once the
// members' views agree. The rounds also confirm the activation a directory
// hands out: if none has shown it for two periods (it stopped and its
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
// No wait on another member lasts longer than FailureDetection but one:
// lookups give up on a member that does not answer (and on one that
// leaves), and try again. The exception is a directory's wait for an
// activator's answer: it ends at once when the member leaves, and
// otherwise lasts up to ActivateTimeout (30s), since a live member that
// is slow under a burst of cold models would otherwise get the model
// placed a second time elsewhere. Member.Alive lets the SDK resend requests
// whose target's member left. A member whose connection breaks and whose
// port then refuses connections (a killed process) is left out of this
// member's topology at once, before the provider notices; the provider
// confirms it (the same topology hash) or, if it still lists the member
// after 2 × FailureDetection and the port no longer refuses, the member is
// taken back. Proto.Actor's etcd provider can miss a member registering
// while another starts (its watch does not continue from its read): every
// member writes its registration again a few times in its first 15 s
// (etcdfix.go). Its registration lease is Config.EtcdTTL (default 3 s,
// Proto.Actor's; settable, unlike in Proto.Actor): a member stalled past its
// lease is blocked by every other member for good, so a loaded cluster
// raises it (bench cluster runs 16 members on 2 cores with 30 s).
//
// Every member gossips its load a few times a second (protoactor gossip,
// key "manta.load"): figures that cost O(1) to compute (budget, used,
// pinned and active bytes, models loaded, activations, request rate,
// placement counters) and a bounded summary (the activations of its 32
// hottest models and its replicas, rebuilt once per rebalance interval).
// The member with the lowest id is the leader: every
// RebalanceConfig.Interval it pulls every member's full list of
// activations (LoadsRequest{full}), gives models hotter than the hot rate
// (HotRate, or half a member's mean share of the requests) replicas
// id@1..id@k on other members (within a manifest's min_replicas and
// max_replicas, read through the Source's ReplicaBounder) (callers spread over them with Member.Route,
// power of two choices on outstanding requests) and runs the rebalancer
// (placement.Planner: hysteresis, at most K moves, cool-down), whose moves
// the directories carry out make-before-break: activate and load on the
// target, switch the entry, stop the old activation.
//
// Member.Where and Member.Loads answer `manta where` and `manta status`.
package cluster
