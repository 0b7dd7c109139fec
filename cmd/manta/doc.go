// Command manta serves models, pushes them to the store and queries a
// running member.
//
//	manta serve [--store DIR|s3://…] [--http 127.0.0.1:8080] [--cluster local|etcd|automanaged] [--budget 4GiB]
//	manta models push DIR | list | versions MODEL | promote MODEL VERSION | rollback MODEL | rm MODEL [VERSION]
//	manta predict [--addr HOST:PORT] MODEL JSON
//	manta status [--addr HOST:PORT]
//	manta reload [--addr HOST:PORT] MODEL
//	manta demo
//	manta bench sdk
//
// `manta COMMAND --help` lists a command's flags, each with its default
// and, where it has one, its environment variable (MANTA_STORE,
// MANTA_HTTP, MANTA_CLUSTER, MANTA_ETCD, MANTA_BUDGET, MANTA_ADDR, …).
// Every flag is bound to its variable the same way (internal/flagenv): the
// variable sets the default, the flag wins, and a variable that does not
// parse is a usage error.
// Exit codes: 0 success, 1 a failed operation, 2 bad usage.
package main
