package dns

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestUpstreamsFromResolvConf(t *testing.T) {
	const conf = `# generated
search default.svc.cluster.local
nameserver 127.0.0.1
nameserver 10.0.0.2
  nameserver   2001:db8::53
nameserver fe80::1%eth0
nameserver not-an-ip
nameserver
options ndots:5
nameserver 127.0.0.53
`
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		listen string
		want   []string
	}{
		{name: "listening on loopback skips only that IP", listen: "127.0.0.1:53",
			want: []string{"10.0.0.2:53", "[2001:db8::53]:53", "[fe80::1%eth0]:53", "127.0.0.53:53"}},
		{name: "listening elsewhere keeps all", listen: "10.0.0.9:53",
			want: []string{"127.0.0.1:53", "10.0.0.2:53", "[2001:db8::53]:53", "[fe80::1%eth0]:53", "127.0.0.53:53"}},
		{name: "own non-loopback IP is kept", listen: "10.0.0.2:53",
			want: []string{"127.0.0.1:53", "10.0.0.2:53", "[2001:db8::53]:53", "[fe80::1%eth0]:53", "127.0.0.53:53"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UpstreamsFromResolvConf(path, tt.listen)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("upstreams = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUpstreamsFromResolvConfMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent")
	if _, err := UpstreamsFromResolvConf(path, ""); err == nil {
		t.Fatal("no error for a missing file")
	}
}
