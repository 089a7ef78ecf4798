package vrrp

import "testing"

func TestReceiveChecks(t *testing.T) {
	pass := [8]byte{'s', 'e', 'c', 'r', 'e', 't'}
	v2 := ReceiveChecks{Version: 2, AuthType: AuthPass, AuthData: pass, NumAddrs: 1}
	v3 := ReceiveChecks{Version: 3, NumAddrs: 2}
	good2 := Received{TTL: 255, Version: 2, Priority: 100, AuthType: AuthPass, AuthData: pass, NumAddrs: 1}
	good3 := Received{TTL: 255, Version: 3, Priority: 100, NumAddrs: 2}
	for _, tc := range []struct {
		name           string
		c              ReceiveChecks
		r              Received
		drop, mismatch DropReason
	}{
		{"v2 good", v2, good2, 0, 0},
		{"v3 good", v3, good3, 0, 0},
		{"ttl 254", v3, with(good3, func(r *Received) { r.TTL = 254 }), DropBadTTL, 0},
		{"ttl 64 unicast", with3(v3, func(c *ReceiveChecks) { c.Unicast = true }), with(good3, func(r *Received) { r.TTL = 64 }), 0, 0},
		{"v2 to v3 instance", v3, with(good3, func(r *Received) { r.Version = 2 }), DropBadVersion, 0},
		{"v3 to v2 instance", v2, with(good2, func(r *Received) { r.Version = 3 }), DropBadVersion, 0},
		{"no auth", v2, with(good2, func(r *Received) { r.AuthType = AuthNone }), DropAuthTypeMismatch, 0},
		{"wrong password", v2, with(good2, func(r *Received) { r.AuthData[0] = 'S' }), DropAuthMismatch, 0},
		{"v3 ignores auth fields", v3, with(good3, func(r *Received) { r.AuthType = AuthPass }), 0, 0},
		{"ttl before version", v3, with(good3, func(r *Received) { r.TTL = 1; r.Version = 2 }), DropBadTTL, 0},
		{"address count differs", v3, with(good3, func(r *Received) { r.NumAddrs = 1 }), 0, DropAddrListMismatch},
		{"address check skipped", with3(v3, func(c *ReceiveChecks) { c.SkipAddrCheck = true }), with(good3, func(r *Received) { r.NumAddrs = 1 }), 0, 0},
	} {
		drop, mismatch := tc.c.Check(&tc.r)
		if drop != tc.drop || mismatch != tc.mismatch {
			t.Errorf("%s: Check = %v, %v; want %v, %v", tc.name, drop, mismatch, tc.drop, tc.mismatch)
		}
	}
}

func with(r Received, f func(*Received)) Received { f(&r); return r }

func with3(c ReceiveChecks, f func(*ReceiveChecks)) ReceiveChecks { f(&c); return c }

func TestReceiveChecksAllocs(t *testing.T) {
	c := ReceiveChecks{Version: 3, NumAddrs: 1}
	r := Received{TTL: 255, Version: 3, NumAddrs: 1}
	if n := testing.AllocsPerRun(100, func() { c.Check(&r) }); n != 0 {
		t.Fatalf("Check allocates %v times", n)
	}
}
