package main

import (
	"encoding/json"
	"testing"
)

func TestPayload(t *testing.T) {
	for _, n := range []int{0, 1, 123456789} {
		p := payload(n)
		if len(p) != 100 {
			t.Errorf("payload(%d) is %d bytes, want 100", n, len(p))
		}
		var v struct {
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal(p, &v); err != nil || v.Data["v"] == "" {
			t.Errorf("payload(%d) = %s: not a ConfigMap spec: %v", n, p, err)
		}
	}
	if string(payload(1)) == string(payload(2)) {
		t.Error("payload does not change with seq")
	}
}
