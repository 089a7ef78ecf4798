package main

import (
	"encoding/json"

	"github.com/vrrpkit/vrrpkit/pkg/vmlab/internal/wire"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func jsonHello(h *wire.Hello) (string, error) {
	b, err := json.Marshal(h)
	return string(b), err
}
