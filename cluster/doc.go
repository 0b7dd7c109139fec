// Package cluster starts Manta members on a Proto.Actor cluster and holds
// what Manta needs from it: providers (local: in-process, the embedded
// default; etcd: several processes; automanaged), a quiet logger, and the
// identity lookup, the seam where placement plugs in.
//
// Start and StartClient return errors instead of panicking (protoactor's
// StartMember panics on provider errors), and Shutdown never panics
// (protoactor's Shutdown does on a client).
//
//	cfg := cluster.DefaultConfig()          // local provider, 127.0.0.1
//	cfg.Provider, cfg.Etcd = cluster.ProviderEtcd, []string{"127.0.0.1:2379"}
//	m, err := cluster.Start(ctx, cfg, kinds...)
package cluster
