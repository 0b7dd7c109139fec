package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/k8s"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Providers Manta knows. "local" is one process (protoactor's in-memory
// provider, the embedded default); "etcd" is several processes or hosts;
// "automanaged" needs no extra server but binds fixed ports on 0.0.0.0.
const (
	ProviderLocal       = "local"
	ProviderEtcd        = "etcd"
	ProviderAutomanaged = "automanaged"
	ProviderK8s         = "k8s"
)

// Config configures one member (or client) of a Manta cluster. Flags and
// environment variables of the manta command fill this same struct.
type Config struct {
	// Name is the cluster name; members with different names never meet.
	Name string `json:"name" yaml:"name"`
	// Provider is local, etcd or automanaged.
	Provider string `json:"provider" yaml:"provider"`
	// Host and Port are where the member's remote (gRPC) listens; port 0
	// picks a free one. Host defaults to 127.0.0.1.
	Host string `json:"host" yaml:"host"`
	Port int    `json:"port" yaml:"port"`
	// AdvertisedHost is the address other members use, if not Host:Port.
	AdvertisedHost string `json:"advertised_host,omitempty" yaml:"advertised_host,omitempty"`
	// Etcd lists the etcd endpoints (provider etcd).
	Etcd []string `json:"etcd,omitempty" yaml:"etcd,omitempty"`
	// EtcdPrefix is the key prefix members register under.
	EtcdPrefix string `json:"etcd_prefix,omitempty" yaml:"etcd_prefix,omitempty"`
	// EtcdTTL is the lease of a member's registration (provider etcd;
	// default 3 s, Proto.Actor's own; whole seconds, at least 2 s). A member whose keep-alives
	// stall longer than this (a starved process) drops out of the
	// provider's list, and Proto.Actor then blocks its id for good on every
	// other member: the cluster splits. A crashed member is left out at
	// once anyway (its connections break and its port refuses: see
	// Lookup), so a long lease costs failover nothing; it bounds only how
	// long a host that vanished without a reset stays listed.
	EtcdTTL time.Duration `json:"etcd_ttl,omitempty" yaml:"etcd_ttl,omitempty"`
	// AutoManagedPeers lists host:port of autoManaged peers (provider automanaged).
	AutoManagedPeers []string `json:"automanaged_peers,omitempty" yaml:"automanaged_peers,omitempty"`
	AutoManagedPort  int      `json:"automanaged_port,omitempty" yaml:"automanaged_port,omitempty"`
	// TLS, when set, makes the members' gRPC remote mutual TLS.
	TLS TLSConfig `json:"tls,omitempty" yaml:"tls,omitempty"`
	// skipPeerCheck lets a test start a member that skips Start's TLS
	// check of the other members (as a process not using Manta would).
	skipPeerCheck bool
	// RequestTimeout bounds cluster-internal requests (activation, lookups).
	RequestTimeout time.Duration `json:"request_timeout" yaml:"request_timeout"`
	// Logger receives protoactor's logs. nil means quiet (errors dropped):
	// protoactor logs at Info to stderr by default.
	Logger *slog.Logger `json:"-" yaml:"-"`
	// LocalAgent lets several in-process members of provider "local" see
	// each other (tests); nil gives the member its own.
	LocalAgent *test.InMemAgent `json:"-" yaml:"-"`
	// Lookup builds the IdentityLookup: the placement seam. nil uses
	// Manta's placement (NewLookup with Placement and Source) for every
	// provider; DisthashLookup is protoactor's rendezvous hashing.
	Lookup func() pcluster.IdentityLookup `json:"-" yaml:"-"`
	// Placement tunes Manta's placement (zero: DefaultPlacementConfig).
	Placement PlacementConfig `json:"placement" yaml:"placement"`
	// Source tells placement about the models this member hosts (memory,
	// request rates, estimates): actors.Host.PlacementSource. nil: the
	// member reports no budget and placement ignores memory.
	Source Source `json:"-" yaml:"-"`
}

// DisthashLookup is protoactor's disthash lookup (an identity lives on its
// rendezvous owner), for Config.Lookup: the baseline Manta's placement
// replaces.
// heartbeatExpiration is how long Proto.Actor's gossip may miss a member's
// heartbeat before it blocks the member for good.
const heartbeatExpiration = 5 * time.Minute

// endpointWriterQueue is the initial size of each peer's outgoing ring.
const endpointWriterQueue = 4096

func DisthashLookup() pcluster.IdentityLookup { return disthash.New() }

// DefaultConfig is one member, provider local, on 127.0.0.1 with a free port.
func DefaultConfig() Config {
	return Config{
		Name:           "manta",
		Provider:       ProviderLocal,
		Host:           "127.0.0.1",
		RequestTimeout: 10 * time.Second,
		EtcdPrefix:     "/manta",
		EtcdTTL:        DefaultEtcdTTL,
		Placement:      DefaultPlacementConfig(),
	}
}

// Validate checks the config and names the first problem.
func (c *Config) Validate() error {
	if c.Name == "" {
		return errors.New("cluster: config: name is empty")
	}
	switch c.Provider {
	case ProviderLocal, ProviderAutomanaged:
	case ProviderEtcd:
		if len(c.Etcd) == 0 {
			return errors.New("cluster: config: provider etcd needs at least one etcd endpoint")
		}
		if c.EtcdTTL != 0 && (c.EtcdTTL < 2*time.Second || c.EtcdTTL%time.Second != 0) {
			return fmt.Errorf("cluster: config: etcd_ttl %v: whole seconds, at least 2s", c.EtcdTTL)
		}
	case ProviderK8s:
		// runs inside a Kubernetes pod (in-cluster config, RBAC of deploy/)
	default:
		return fmt.Errorf("cluster: config: unknown provider %q (want local, etcd, automanaged or k8s)", c.Provider)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("cluster: config: port %d out of range", c.Port)
	}
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if c.RequestTimeout <= 0 {
		return fmt.Errorf("cluster: config: request_timeout must be positive, got %v", c.RequestTimeout)
	}
	return c.Placement.Validate()
}

// QuietLogger is a logger that drops everything.
func QuietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 100}))
}

// Member is a running cluster member (or client).
type Member struct {
	System  *actor.ActorSystem
	Cluster *pcluster.Cluster
	cfg     Config
	client  bool
	lookup  *Lookup // nil with another Config.Lookup

	stop     chan struct{} // closed by Shutdown
	stopOnce sync.Once
}

// Start starts a member hosting kinds. It returns errors instead of
// panicking (protoactor's StartMember panics on provider errors).
func Start(ctx context.Context, cfg Config, kinds ...*pcluster.Kind) (*Member, error) {
	return start(ctx, cfg, false, kinds)
}

// StartClient joins a cluster as a client: it can call actors but hosts none.
func StartClient(ctx context.Context, cfg Config) (*Member, error) {
	return start(ctx, cfg, true, nil)
}

func start(ctx context.Context, cfg Config, client bool, kinds []*pcluster.Kind) (m *Member, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = QuietLogger()
	}
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }),
		actor.WithDeadLetterRequestLogging(false),
	)
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := cfg.Port
	if port == 0 {
		// protoactor's remote needs a concrete port to advertise.
		port, err = freePort(host)
		if err != nil {
			return nil, err
		}
	}
	// Server and dial options replace protoactor's defaults (insecure, and
	// gRPC's 4 MiB receive limit: a batch of envelopes over it broke the
	// link and lost every message in it), so they are always given here.
	serverOpts := []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxRemoteMessageBytes)}
	dialCreds := grpc.WithTransportCredentials(insecure.NewCredentials())
	var clientTLS *tls.Config // for the peer check below
	if cfg.TLS.Enabled() {
		serverTLS, c, err := cfg.TLS.configs()
		if err != nil {
			return nil, err
		}
		clientTLS = c
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(serverTLS)))
		dialCreds = grpc.WithTransportCredentials(credentials.NewTLS(clientTLS))
	}
	ropts := []remote.ConfigOption{
		// Proto.Actor's default gives every peer's endpoint writer a
		// ring of a million slots (16 MB) that never shrinks and whose
		// pages become resident as the ring turns: 16 MB of RSS per peer
		// after a million messages. The ring doubles when full, so a
		// small start bounds nothing and costs 64 KiB a peer.
		remote.WithEndpointWriterQueueSize(endpointWriterQueue),
		remote.WithServerOptions(serverOpts...),
		remote.WithDialOptions(dialCreds, closeFailedConns()),
	}
	if cfg.AdvertisedHost != "" {
		ropts = append(ropts, remote.WithAdvertisedHost(cfg.AdvertisedHost))
	}
	rcfg := remote.Configure(host, port, ropts...)

	provider, err := newProvider(cfg)
	if err != nil {
		return nil, err
	}
	var lookup pcluster.IdentityLookup
	if cfg.Lookup != nil {
		lookup = cfg.Lookup()
	} else {
		lookup = NewLookup(cfg.Placement, cfg.Source, cfg.Logger)
	}
	ccfg := pcluster.Configure(cfg.Name, provider, lookup, rcfg,
		pcluster.WithKinds(kinds...),
		pcluster.WithRequestTimeout(cfg.RequestTimeout),
		// Proto.Actor blocks, for good, a member whose gossiped heartbeat
		// it has not seen for this long. On busy members gossip rounds
		// time out and a live member's heartbeat can stall past the
		// default 20 s: it was then shut out of the cluster while the
		// provider still listed it (a split). Members that die are
		// removed by the provider and by their broken connections, so
		// the heartbeat is only a last resort here.
		pcluster.WithHeartbeatExpiration(heartbeatExpiration),
	)
	// One gossip round per load round: Proto.Actor's default (300 ms)
	// re-gossips every member's heartbeat more than three times a second.
	ccfg.GossipInterval = cfg.Placement.withDefaults().LoadInterval
	c := pcluster.New(system, ccfg)

	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("cluster: start %s member: %v", cfg.Provider, r)
			}
		}()
		if client {
			c.StartClient()
		} else {
			c.StartMember()
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster: start member: %w", ctx.Err())
	}
	m = &Member{System: system, Cluster: c, cfg: cfg, client: client, stop: make(chan struct{})}
	if cfg.Provider == ProviderEtcd && !client {
		prefix := cfg.EtcdPrefix
		if prefix == "" {
			prefix = "/manta"
		}
		key := prefix + "/" + cfg.Name + "/" + cfg.Name + "@" + system.ID
		go rePutEtcdKey(cfg.Etcd, key, m.stop, system.Logger())
	}
	if ml, ok := lookup.(*Lookup); ok {
		m.lookup = ml
		ml.begin()
	}
	if clientTLS != nil && !cfg.skipPeerCheck {
		// A member whose certificate the cluster refuses must not stay
		// registered: it would own a share of the directory and answer
		// nothing. Check before anything is served, and stop.
		var peers []string
		for _, a := range m.Members() {
			if a != m.Address() {
				peers = append(peers, a)
			}
		}
		if err := checkPeers(clientTLS, peers, 2*time.Second); err != nil {
			// Deregister first (a non-graceful Shutdown leaves the
			// registration to expire), then stop.
			if !client {
				_ = c.Config.ClusterProvider.Shutdown(true)
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = m.Shutdown(sctx, false)
			return nil, err
		}
	}
	return m, nil
}

func newProvider(cfg Config) (pcluster.ClusterProvider, error) {
	switch cfg.Provider {
	case ProviderLocal:
		agent := cfg.LocalAgent
		if agent == nil {
			agent = test.NewInMemAgent()
		}
		return test.NewTestProvider(agent), nil
	case ProviderEtcd:
		prefix := cfg.EtcdPrefix
		if prefix == "" {
			prefix = "/manta"
		}
		p, err := etcd.NewWithConfig(prefix, clientv3.Config{
			Endpoints:   cfg.Etcd,
			DialTimeout: 5 * time.Second,
			Logger:      nil,
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: etcd %s: %w", strings.Join(cfg.Etcd, ","), err)
		}
		ttl := cfg.EtcdTTL
		if ttl == 0 {
			ttl = DefaultEtcdTTL
		}
		if err := setEtcdTTL(p, ttl); err != nil {
			return nil, err
		}
		return p, nil
	case ProviderAutomanaged:
		port := cfg.AutoManagedPort
		if port == 0 {
			port = 6330
		}
		return automanaged.NewWithConfig(2*time.Second, port, cfg.AutoManagedPeers...), nil
	case ProviderK8s:
		p, err := k8s.New()
		if err != nil {
			return nil, fmt.Errorf("cluster: provider k8s needs to run in a Kubernetes pod (in-cluster config): %w", err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("cluster: unknown provider %q", cfg.Provider)
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("cluster: find a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ID is the member's id (the actor system id).
func (m *Member) ID() string { return m.System.ID }

// Address is host:port of the member's remote.
func (m *Member) Address() string { return m.System.Address() }

// Members returns the addresses of the cluster's current members.
func (m *Member) Members() []string {
	var out []string
	for _, mem := range m.Cluster.MemberList.Members().Members() {
		out = append(out, net.JoinHostPort(mem.Host, strconv.Itoa(int(mem.Port))))
	}
	return out
}

// Shutdown stops the member: gracefully when graceful is true (members hand
// off), otherwise at once. It never panics (protoactor's Shutdown does on a
// client) and returns within ctx.
func (m *Member) Shutdown(ctx context.Context, graceful bool) error {
	var err error
	m.stopOnce.Do(func() {
		if m.stop != nil {
			close(m.stop)
		}
		if m.lookup != nil {
			m.lookup.Shutdown()
		}
		done := make(chan error, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					done <- fmt.Errorf("cluster: shutdown: %v", r)
				}
			}()
			if m.client {
				// Cluster.Shutdown panics on a client (gossip never started).
				_ = m.cfg.Provider // nothing to deregister for a client
				m.System.Shutdown()
				m.Cluster.Remote.Shutdown(graceful)
			} else {
				m.Cluster.Shutdown(graceful)
			}
			done <- nil
		}()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = fmt.Errorf("cluster: shutdown: %w", ctx.Err())
		}
	})
	return err
}
