package main

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vrrpkit/vrrpkit/pkg/vrrp"
	pb "github.com/vrrpkit/vrrpkit/proto/vrrpkitv1"
)

// testInstance is a v2 PASS instance in BACKUP, attached to a socket
// without a kernel socket, so handleRx can be driven directly. Nothing in
// these tests makes it master, so no address is ever touched.
func testInstance(t *testing.T) (*engine, *instance, *socket) {
	t.Helper()
	e := newEngine(slog.New(slog.NewTextHandler(io.Discard, nil)), "")
	in, err := newInstance(&pb.VrrpInstance{
		Name: "VI_1", Interface: "eth0", Vrid: 51, Priority: 100, Version: 2,
		AdvertInt:        durationpb.New(time.Second),
		VirtualIpaddress: []*pb.VirtualAddress{{Prefix: "192.0.2.100/24"}},
		AuthType:         pb.AuthType_AUTH_TYPE_PASS, AuthPass: "secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &socket{key: sockKey{iface: "eth0", family: 4}, byVRID: map[uint8][]*instance{51: {in}}}
	in.src = netip.MustParseAddr("192.0.2.1")
	now := time.Now()
	e.do(in, in.m.Startup(now, nil), now)
	if in.m.State() != vrrp.StateBackup {
		t.Fatalf("state %v after startup", in.m.State())
	}
	return e, in, s
}

func goodAdvert(s *socket, prio uint8) rxEvent {
	ev := rxEvent{sock: s, src: netip.MustParseAddr("192.0.2.2"),
		ttl: 255, version: 2, vrid: 51, priority: prio, interval: time.Second,
		authType: vrrp.AuthPass, nAddrs: 1, at: time.Now()}
	copy(ev.authData[:], "secret")
	return ev
}

// TestHandleRxDrops checks RFC 5798 §7.1's per-instance checks: each bad
// advert is counted under its reason and never reaches the state machine.
func TestHandleRxDrops(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*rxEvent)
		counter vrrp.DropReason
	}{
		{"ttl", func(ev *rxEvent) { ev.ttl = 64 }, vrrp.DropBadTTL},
		{"version", func(ev *rxEvent) { ev.version = 3 }, vrrp.DropBadVersion},
		{"auth type", func(ev *rxEvent) { ev.authType = vrrp.AuthNone }, vrrp.DropAuthTypeMismatch},
		{"password", func(ev *rxEvent) { copy(ev.authData[:], "wrong!!!") }, vrrp.DropAuthMismatch},
		{"checksum (from the reader)", func(ev *rxEvent) { ev.drop = vrrp.DropBadChecksum }, vrrp.DropBadChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, in, s := testInstance(t)
			deadline := in.m.Deadline()
			ev := goodAdvert(s, 0) // priority 0 would cut the down timer
			tc.mutate(&ev)
			e.handleRx(ev)
			if in.counters.drops[tc.counter] != 1 {
				t.Errorf("counter %v = %d, want 1 (counters %+v)", tc.counter, in.counters.drops[tc.counter], in.counters)
			}
			if in.counters.rxAdverts != 0 || !in.m.Deadline().Equal(deadline) || in.m.State() != vrrp.StateBackup {
				t.Errorf("a dropped advert reached the state machine: received %d, deadline moved %v, state %v",
					in.counters.rxAdverts, in.m.Deadline().Sub(deadline), in.m.State())
			}
		})
	}
}

func TestHandleRxUnknownVRIDAndGood(t *testing.T) {
	e, in, s := testInstance(t)
	ev := goodAdvert(s, 200)
	ev.vrid = 52
	e.handleRx(ev)
	if s.unknownVRID != 1 {
		t.Errorf("unknown VRID not counted on the socket: %d", s.unknownVRID)
	}
	good := goodAdvert(s, 200)
	e.handleRx(good)
	// An accepted advert restarts the down timer from its arrival.
	if want := good.at.Add(in.m.MasterDownInterval()); in.counters.rxAdverts != 1 || !in.m.Deadline().Equal(want) {
		t.Errorf("a good advert was not taken: deadline %v after arrival, want %v; counters %+v",
			in.m.Deadline().Sub(good.at), want.Sub(good.at), in.counters)
	}
	if in.masterAddr != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("master address %v", in.masterAddr)
	}
}
