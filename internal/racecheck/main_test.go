package main

import "testing"

const libRace = `WARNING: DATA RACE
Write at 0x00c0011e8480 by goroutine 657:
  github.com/asynkron/protoactor-go/actor.(*actorContextExtras).killReceiveTimeoutTimer()
      /x/actor_context.go:81 +0x84

Previous read at 0x00c0011e8480 by goroutine 656:
  github.com/asynkron/protoactor-go/actor.(*actorContext).InvokeUserMessage()
      /x/actor_context.go:509 +0x5d3

Goroutine 656 (finished) created at:
  github.com/manta-ml/manta/actors.(*modelActor).init.func1()
      /work/main/actors/model.go:155 +0x74
`

const mantaRace = `WARNING: DATA RACE
Write at 0x00c0011e8480 by goroutine 657:
  github.com/manta-ml/manta/actors.(*modelActor).predict()
      /work/main/actors/model.go:81 +0x84

Previous read at 0x00c0011e8480 by goroutine 656:
  github.com/asynkron/protoactor-go/actor.(*actorContext).InvokeUserMessage()
      /x/actor_context.go:509 +0x5d3
`

const libRaceCalledFromManta = `WARNING: DATA RACE
Write at 0x000001f66800 by goroutine 30:
  google.golang.org/grpc/grpclog.SetLoggerV2()
      /x/grpclog/loggerv2.go:75 +0x119
  github.com/manta-ml/manta/cluster.start.func2()
      /work/main/cluster/member.go:183 +0xc4

Previous read at 0x000001f66800 by goroutine 24:
  google.golang.org/grpc/grpclog.V()
      /x/grpclog/grpclog.go:41 +0x28
`

const mantaMapRace = `WARNING: DATA RACE
Write at 0x00c0011e8480 by goroutine 657:
  runtime.mapassign_faststr()
      /usr/local/go/src/runtime/map.go:1 +0x84
  github.com/manta-ml/manta/actors.(*Host).activated()
      /work/main/actors/host.go:81 +0x84

Previous read at 0x00c0011e8480 by goroutine 656:
  runtime.mapaccess1()
      /usr/local/go/src/runtime/map.go:1 +0x84
  github.com/asynkron/protoactor-go/actor.(*actorContext).InvokeUserMessage()
      /x/actor_context.go:509 +0x5d3
`

func TestMantaFrame(t *testing.T) {
	if mantaFrame(libRaceCalledFromManta) {
		t.Error("a race inside grpclog, merely called from Manta, was counted as Manta's")
	}
	if !mantaFrame(mantaMapRace) {
		t.Error("a map race in Manta code (under runtime frames) was not counted")
	}
	if mantaFrame(libRace) {
		t.Error("a race whose access stacks are all library frames was counted as Manta's")
	}
	if !mantaFrame(mantaRace) {
		t.Error("a race with a Manta frame in its access stack was not counted")
	}
	rs := raceReports("x\n" + libRace + "==================\n" + mantaRace + "==================\nend")
	if len(rs) != 2 || mantaFrame(rs[0]) || !mantaFrame(rs[1]) {
		t.Fatalf("raceReports split %d reports", len(rs))
	}
}
