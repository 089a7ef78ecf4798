package fanout

import "testing"

func drain[T any](c <-chan T) []T {
	var out []T
	for v := range c {
		out = append(out, v)
	}
	return out
}

func TestFanout(t *testing.T) {
	h := New[int](3)
	a, b := h.Subscribe(), h.Subscribe()
	h.Publish(1)
	h.Publish(2)
	if v := <-a.C; v != 1 {
		t.Fatalf("a got %d", v)
	}
	h.Publish(3)
	h.Publish(4) // b has 1, 2, 3 unread: cut off; a has room
	if !b.Lagged() || a.Lagged() {
		t.Fatalf("lagged: a %v b %v, want b only", a.Lagged(), b.Lagged())
	}
	if got := drain(b.C); len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("b got %v before being cut off, want [1 2 3]", got)
	}
	late := h.Subscribe()
	h.Publish(5)
	a.Close()
	a.Close() // twice is fine
	if got := drain(a.C); len(got) != 3 || got[0] != 2 || got[2] != 4 {
		t.Fatalf("a got %v, want [2 3 4] (5 did not fit)", got)
	}
	h.Close()
	if got := drain(late.C); len(got) != 1 || got[0] != 5 || late.Lagged() {
		t.Fatalf("late got %v lagged %v, want [5] and not lagged", got, late.Lagged())
	}
	if _, ok := <-h.Subscribe().C; ok {
		t.Fatal("a subscription after Close is open")
	}
	h.Publish(6) // no subscribers, no panic
}
