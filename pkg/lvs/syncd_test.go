package lvs

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The golden bytes are netlink attributes as linux/netlink.h lays them out
// (little-endian length and type, payload padded to 4 bytes, 0x8000 on a
// nested type), with the IPVS numbers of linux/ip_vs.h written out by hand.

func TestEncodeNewDaemonGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    SyncDaemon
		want []byte
	}{
		{
			name: "required only",
			d:    SyncDaemon{State: SyncBackup, Interface: "eth0", SyncID: 51},
			want: []byte{
				0x20, 0x00, 0x03, 0x80, // IPVS_CMD_ATTR_DAEMON, nested, 32 bytes
				0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // STATE = BACKUP
				0x09, 0x00, 0x02, 0x00, 'e', 't', 'h', '0', 0x00, 0x00, 0x00, 0x00, // MCAST_IFN "eth0\0"
				0x08, 0x00, 0x03, 0x00, 0x33, 0x00, 0x00, 0x00, // SYNC_ID = 51
			},
		},
		{
			name: "every option, IPv4 group",
			d: SyncDaemon{State: SyncMaster, Interface: "eth0", SyncID: 5, MaxLen: 1400, Port: 9000, TTL: 2,
				Group: netip.MustParseAddr("224.0.0.82")},
			want: []byte{
				0x40, 0x00, 0x03, 0x80,
				0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, // STATE = MASTER
				0x09, 0x00, 0x02, 0x00, 'e', 't', 'h', '0', 0x00, 0x00, 0x00, 0x00,
				0x08, 0x00, 0x03, 0x00, 0x05, 0x00, 0x00, 0x00, // SYNC_ID = 5
				0x06, 0x00, 0x04, 0x00, 0x78, 0x05, 0x00, 0x00, // SYNC_MAXLEN = 1400, host order
				0x06, 0x00, 0x07, 0x00, 0x28, 0x23, 0x00, 0x00, // MCAST_PORT = 9000, host order
				0x05, 0x00, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, // MCAST_TTL = 2
				0x08, 0x00, 0x05, 0x00, 224, 0, 0, 82, // MCAST_GROUP, network order
			},
		},
		{
			name: "IPv6 group",
			d:    SyncDaemon{State: SyncBackup, Interface: "e", SyncID: 0, Group: netip.MustParseAddr("ff02::1:2")},
			want: []byte{
				0x30, 0x00, 0x03, 0x80, // 4 + 8 + 8 + 8 + 20
				0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
				0x06, 0x00, 0x02, 0x00, 'e', 0x00, 0x00, 0x00,
				0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
				0x14, 0x00, 0x06, 0x00, // MCAST_GROUP6, 16 bytes
				0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0x02,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeNewDaemon(tc.d)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("encodeNewDaemon(%+v)\n got % x\nwant % x", tc.d, got, tc.want)
			}
		})
	}
}

func TestEncodeNewDaemonRefuses(t *testing.T) {
	for _, tc := range []struct {
		d    SyncDaemon
		want string
	}{
		{SyncDaemon{State: 3, Interface: "eth0"}, "neither master nor backup"},
		{SyncDaemon{State: SyncMaster}, "interface"},
		{SyncDaemon{State: SyncMaster, Interface: "sixteen-bytes-xx"}, "interface"},
		{SyncDaemon{State: SyncMaster, Interface: "eth0", Group: netip.MustParseAddr("10.0.0.1")}, "not multicast"},
	} {
		_, err := encodeNewDaemon(tc.d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("encodeNewDaemon(%+v) = %v, want an error with %q", tc.d, err, tc.want)
		}
	}
}

func TestEncodeDelDaemonGolden(t *testing.T) {
	got, err := encodeDelDaemon(SyncMaster)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x0c, 0x00, 0x03, 0x80, 0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00}
	if !bytes.Equal(got, want) {
		t.Errorf("got % x\nwant % x", got, want)
	}
	if _, err := encodeDelDaemon(0); err == nil {
		t.Error("encodeDelDaemon(0): no error")
	}
}

// TestDecodeDaemon reads what ip_vs_genl_fill_daemon writes: every
// attribute, the defaults filled in.
func TestDecodeDaemon(t *testing.T) {
	b := []byte{
		0x40, 0x00, 0x03, 0x00, // a kernel nest has no NLA_F_NESTED
		0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
		0x09, 0x00, 0x02, 0x00, 'e', 't', 'h', '0', 0x00, 0x00, 0x00, 0x00,
		0x08, 0x00, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00,
		0x06, 0x00, 0x04, 0x00, 0xc8, 0x05, 0x00, 0x00,
		0x06, 0x00, 0x07, 0x00, 0x90, 0x22, 0x00, 0x00,
		0x05, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00,
		0x08, 0x00, 0x05, 0x00, 224, 0, 0, 81,
	}
	got, err := decodeDaemon(b)
	if err != nil {
		t.Fatal(err)
	}
	want := SyncDaemon{State: SyncMaster, Interface: "eth0", SyncID: 7, MaxLen: 1480, Port: 8848, TTL: 1, Group: DefaultSyncGroup}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if !(SyncDaemon{State: SyncMaster, Interface: "eth0", SyncID: 7}).Runs(got) {
		t.Error("a daemon asked for with defaults does not match the kernel's report of it")
	}
	for _, d := range []SyncDaemon{
		{State: SyncBackup, Interface: "eth0", SyncID: 7},
		{State: SyncMaster, Interface: "eth1", SyncID: 7},
		{State: SyncMaster, Interface: "eth0", SyncID: 8},
		{State: SyncMaster, Interface: "eth0", SyncID: 7, Port: 9000},
		{State: SyncMaster, Interface: "eth0", SyncID: 7, TTL: 2},
		{State: SyncMaster, Interface: "eth0", SyncID: 7, MaxLen: 1400},
		{State: SyncMaster, Interface: "eth0", SyncID: 7, Group: netip.MustParseAddr("224.0.0.82")},
	} {
		if d.Runs(got) {
			t.Errorf("%v matches the kernel's %v", d, got)
		}
	}
	if _, err := decodeDaemon([]byte{0x08, 0x00, 0x04, 0x00, 1, 0, 0, 0}); err == nil {
		t.Error("an answer without IPVS_CMD_ATTR_DAEMON decoded without error")
	}
}

func TestEncodeTimeoutsGolden(t *testing.T) {
	got, err := encodeTimeouts(Timeouts{TCP: 900 * time.Second, UDP: 300 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x08, 0x00, 0x04, 0x00, 0x84, 0x03, 0x00, 0x00, // TIMEOUT_TCP = 900
		0x08, 0x00, 0x06, 0x00, 0x2c, 0x01, 0x00, 0x00, // TIMEOUT_UDP = 300; TCP_FIN unset is not sent
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got % x\nwant % x", got, want)
	}
	if _, err := encodeTimeouts(Timeouts{TCPFin: 1500 * time.Millisecond}); err == nil {
		t.Error("a fractional timeout encoded without error")
	}
	back, err := decodeTimeouts(append(want, 0x08, 0x00, 0x05, 0x00, 0x78, 0x00, 0x00, 0x00))
	if err != nil {
		t.Fatal(err)
	}
	if w := (Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}); back != w {
		t.Errorf("decodeTimeouts: got %+v, want %+v", back, w)
	}
}
