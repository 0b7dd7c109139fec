package cluster

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/manta-ml/manta/api"
)

var streamDesc = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// serveStreams starts a gRPC server whose every stream runs handler.
func serveStreams(t *testing.T, handler func(grpc.ServerStream) error) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, st grpc.ServerStream) error { return handler(st) }))
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.Dial(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), closeFailedConns())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// The remote's connect attempts: a conn whose stream fails before the
// handshake answered is closed (it would reconnect forever otherwise); one
// whose handshake answered is left to its owner.
func TestCloseFailedConns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("no server", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now
		cc := dial(t, addr)
		if _, err := cc.NewStream(ctx, streamDesc, "/manta.Test/Stream"); err == nil {
			t.Fatal("a stream to a closed port")
		}
		if s := cc.GetState(); s != connectivity.Shutdown {
			t.Errorf("conn state %v after a failed stream, want Shutdown", s)
		}
	})

	t.Run("handshake refused", func(t *testing.T) {
		addr := serveStreams(t, func(st grpc.ServerStream) error { return errors.New("go away") })
		cc := dial(t, addr)
		st, err := cc.NewStream(ctx, streamDesc, "/manta.Test/Stream")
		if err != nil {
			t.Fatal(err)
		}
		_ = st.SendMsg(&emptypb.Empty{})
		if err := st.RecvMsg(&emptypb.Empty{}); err == nil {
			t.Fatal("the handshake answered")
		}
		if s := cc.GetState(); s != connectivity.Shutdown {
			t.Errorf("conn state %v after a failed handshake, want Shutdown", s)
		}
	})

	t.Run("handshake answered", func(t *testing.T) {
		addr := serveStreams(t, func(st grpc.ServerStream) error {
			if err := st.SendMsg(&emptypb.Empty{}); err != nil {
				return err
			}
			return errors.New("later failure")
		})
		cc := dial(t, addr)
		st, err := cc.NewStream(ctx, streamDesc, "/manta.Test/Stream")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RecvMsg(&emptypb.Empty{}); err != nil {
			t.Fatal(err)
		}
		if err := st.RecvMsg(&emptypb.Empty{}); err == nil {
			t.Fatal("no later failure")
		}
		if s := cc.GetState(); s == connectivity.Shutdown {
			t.Error("a conn whose handshake answered was closed")
		}
	})
}

// A request larger than gRPC's default 4 MiB receive limit crosses members
// (it broke the link before: protoactor batches envelopes into one gRPC
// message, and the receiver refused it).
func TestLargeMessageCrossesMembers(t *testing.T) {
	tc := newTestCluster(t)
	for i := 0; i < 2; i++ {
		tc.start(&fakeSource{budget: 1000, sizes: map[string]int64{"big": 10}})
	}
	tc.waitMembers(2)
	pid := tc.members[0].Cluster.Get("big", KindModel)
	if pid == nil {
		t.Fatal("no PID")
	}
	from := tc.members[0]
	if pid.Address == from.Address() {
		from = tc.members[1]
	}
	payload := make([]byte, 6<<20)
	for i := 0; i < 3; i++ { // several in one batch, too
		res, err := from.System.Root.RequestFuture(pid, &api.PredictRequest{ModelId: "big", RequestId: "r", Payload: payload}, 10*time.Second).Result()
		if err != nil {
			t.Fatalf("a 6 MiB request to another member: %v", err)
		}
		if r, ok := res.(*api.PredictResponse); !ok || r.ServedBy != pid.Address {
			t.Fatalf("answer %+v", res)
		}
	}
}
