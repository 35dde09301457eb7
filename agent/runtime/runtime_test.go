package runtime

import "testing"

func TestParseContainerID(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ContainerID
		wantErr bool
	}{
		{"ok", "uid-1/web/3", ContainerID{PodUID: "uid-1", Name: "web", Attempt: 3}, false},
		{"missing part", "uid-1/web", ContainerID{}, true},
		{"extra part", "a/b/1/2", ContainerID{}, true},
		{"negative attempt", "a/b/-1", ContainerID{}, true},
		{"not a number", "a/b/x", ContainerID{}, true},
		{"empty name", "a//1", ContainerID{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseContainerID(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseContainerID(%q) = %+v, %v", tt.in, got, err)
			}
			if err == nil && got.String() != tt.in {
				t.Fatalf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}
