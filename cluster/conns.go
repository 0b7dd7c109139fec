package cluster

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc"
)

// closeFailedConns works around a leak in protoactor's remote (pinned
// module, remote/endpoint_writer.go): an endpoint writer tries to connect
// up to MaxRetryCount times, each try a new grpc.ClientConn stored over the
// previous one, and only the last is ever closed. A ClientConn that is not
// closed keeps reconnecting forever (three goroutines each), so every send
// to a member that died or restarted on another port left four of them
// behind: the chaos soak saw a member grow to 800 ClientConns and 3,600
// goroutines in five minutes.
//
// The interceptor closes a ClientConn as soon as its stream fails before
// the remote's connect handshake answered (stream creation, the first send
// or the first receive). A conn whose handshake succeeded stays with the
// endpoint writer, which closes it when the endpoint terminates. Closing
// twice is harmless: the writer's second Close only returns an error it logs.
func closeFailedConns() grpc.DialOption {
	return grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn,
		method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			_ = cc.Close()
			return nil, err
		}
		return &handshakeStream{ClientStream: s, cc: cc}, nil
	})
}

// handshakeStream closes its ClientConn when the stream fails before the
// first message was received.
type handshakeStream struct {
	grpc.ClientStream
	cc   *grpc.ClientConn
	done atomic.Bool // a message was received: the handshake answered
}

// failed closes the conn when err ends the stream before the handshake.
// (One atomic load per send afterwards: the batches' hot path.)
func (s *handshakeStream) failed(err error) {
	if err != nil && !s.done.Load() {
		_ = s.cc.Close()
	}
}

func (s *handshakeStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	s.failed(err)
	return err
}

func (s *handshakeStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.done.Store(true)
		return nil
	}
	s.failed(err)
	return err
}

var _ grpc.ClientStream = (*handshakeStream)(nil)

// MaxRemoteMessageBytes is the largest message a member's remote accepts
// from another member (gRPC's default is 4 MiB). protoactor sends envelopes
// in batches of up to 1,000 in one gRPC message, and a batch over the
// receiver's limit broke the link, losing every message in it; the SDK caps
// one request's payload (manta.Config.MaxPayloadBytes, 16 MiB by default)
// well below this.
const MaxRemoteMessageBytes = 1 << 30
