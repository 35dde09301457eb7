package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"4096", 4096, false},
		{"512Ki", 512 << 10, false},
		{"20Mi", 20 << 20, false},
		{"1Gi", 1 << 30, false},
		{"", 0, true},
		{"20M", 0, true},
		{"-1Mi", 0, true},
		{"lots", 0, true},
		{"2000Gi", 0, true}, // over the 1 TiB sanity bound
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestBurn(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		cancel   bool // end it as SIGTERM would
		wantCode int
		wantOut  string
	}{
		{"for a duration", []string{"burn", "--cpu", "1", "--mem", "1Mi", "20ms"}, false, 0, "burning 1 cpu, holding 1048576 bytes"},
		{"until terminated", []string{"burn", "--cpu", "2"}, true, 0, "burning 2 cpu, holding 0 bytes"},
		{"bad size", []string{"burn", "--mem", "lots"}, false, 2, ""},
		{"negative cpu", []string{"burn", "--cpu", "-1"}, false, 2, ""},
		{"two durations", []string{"burn", "1s", "2s"}, false, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			var out, errb bytes.Buffer
			if code := run(ctx, tt.args, &out, &errb); code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d and %q", code, out.String(), errb.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}
