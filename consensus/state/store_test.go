package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

func ns(name string) *pb.Object {
	return &pb.Object{Kind: NamespaceKind, ApiVersion: "v1", Name: name}
}

func cm(namespace, name, data string) *pb.Object {
	return &pb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: namespace, Name: name,
		Labels: map[string]string{"app": name}, Spec: []byte(`{"data":{"k":"` + data + `"}}`)}
}

func put(o *pb.Object) *pb.Op {
	return &pb.Op{Type: pb.Op_PUT, Object: o, NewUid: "uid-" + o.GetName()}
}

func del(o *pb.Object) *pb.Op { return &pb.Op{Type: pb.Op_DELETE, Object: o} }

func cmd(ops ...*pb.Op) *pb.Command { return &pb.Command{Ops: ops, TimeUnixNano: 1000} }

// seeded returns a store holding namespace default and configmap default/a at revision 2.
func seeded(t *testing.T) *Store {
	t.Helper()
	s := New()
	for i, c := range []*pb.Command{cmd(put(ns("default"))), cmd(put(cm("default", "a", "1")))} {
		if r := s.Apply(uint64(i+1), c); r.Err != nil {
			t.Fatalf("seed: %v", r.Err)
		}
	}
	return s
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		cmd     *pb.Command
		wantErr error
		check   func(t *testing.T, s *Store, r Result)
	}{
		{
			name: "create sets identity from the command",
			cmd:  cmd(put(cm("default", "b", "x"))),
			check: func(t *testing.T, s *Store, r Result) {
				o, _ := s.Get("ConfigMap", "default", "b")
				if o.GetUid() != "uid-b" || o.GetResourceVersion() != 3 || o.GetCreateRevision() != 3 ||
					o.GetGeneration() != 1 || o.GetCreateTimeUnixNano() != 1000 || !r.Results[0].GetCreated() {
					t.Fatalf("bad created object %v result %v", o, r.Results[0])
				}
			},
		},
		{
			name: "update keeps uid and bumps generation on spec change",
			cmd:  cmd(put(cm("default", "a", "2"))),
			check: func(t *testing.T, s *Store, r Result) {
				o, _ := s.Get("ConfigMap", "default", "a")
				if o.GetUid() != "uid-a" || o.GetResourceVersion() != 3 || o.GetCreateRevision() != 2 || o.GetGeneration() != 2 {
					t.Fatalf("bad updated object %v", o)
				}
			},
		},
		{
			name: "label change does not bump generation",
			cmd: func() *pb.Command {
				o := cm("default", "a", "1")
				o.Labels = map[string]string{"app": "a", "tier": "x"}
				return cmd(put(o))
			}(),
			check: func(t *testing.T, s *Store, r Result) {
				o, _ := s.Get("ConfigMap", "default", "a")
				if o.GetGeneration() != 1 || o.GetLabels()["tier"] != "x" || o.GetResourceVersion() != 3 {
					t.Fatalf("bad object %v", o)
				}
			},
		},
		{
			name: "same content is unchanged and keeps its revision",
			cmd:  cmd(put(cm("default", "a", "1"))),
			check: func(t *testing.T, s *Store, r Result) {
				o, _ := s.Get("ConfigMap", "default", "a")
				if !r.Results[0].GetUnchanged() || o.GetResourceVersion() != 2 {
					t.Fatalf("want unchanged at 2, got %v %v", r.Results[0], o)
				}
			},
		},
		{
			name:    "must_create on an existing object",
			cmd:     cmd(&pb.Op{Type: pb.Op_PUT, Object: cm("default", "a", "9"), MustCreate: true, NewUid: "u"}),
			wantErr: ErrExists,
		},
		{
			name:    "compare-and-swap with a stale revision",
			cmd:     cmd(&pb.Op{Type: pb.Op_PUT, Object: cm("default", "a", "9"), ExpectRevision: 1}),
			wantErr: ErrConflict,
		},
		{
			name: "compare-and-swap with the current revision",
			cmd:  cmd(&pb.Op{Type: pb.Op_PUT, Object: cm("default", "a", "9"), ExpectRevision: 2}),
			check: func(t *testing.T, s *Store, r Result) {
				if o, _ := s.Get("ConfigMap", "default", "a"); o.GetResourceVersion() != 3 {
					t.Fatalf("not updated: %v", o)
				}
			},
		},
		{
			name:    "namespace must exist",
			cmd:     cmd(put(cm("nowhere", "a", "1"))),
			wantErr: ErrNotFound,
		},
		{
			name: "namespace created earlier in the same transaction",
			cmd:  cmd(put(ns("team")), put(cm("team", "a", "1"))),
			check: func(t *testing.T, s *Store, r Result) {
				if o, _ := s.Get("ConfigMap", "team", "a"); o == nil {
					t.Fatal("configmap team/a missing")
				}
			},
		},
		{
			name:    "a failing op refuses the whole transaction",
			cmd:     cmd(put(cm("default", "c", "1")), del(cm("default", "missing", ""))),
			wantErr: ErrNotFound,
			check: func(t *testing.T, s *Store, r Result) {
				if o, _ := s.Get("ConfigMap", "default", "c"); o != nil {
					t.Fatal("first op of a refused transaction was applied")
				}
				if s.Revision() != 3 {
					t.Fatalf("revision %d, want 3 even for a refused command", s.Revision())
				}
			},
		},
		{
			name: "deleting a namespace deletes its objects",
			cmd:  cmd(del(ns("default"))),
			check: func(t *testing.T, s *Store, r Result) {
				if s.Len() != 0 {
					t.Fatalf("%d objects left", s.Len())
				}
				evs, _, _ := s.EventsSince(2)
				if len(evs) != 2 || evs[0].Object.GetKind() != NamespaceKind || evs[1].Object.GetKind() != "ConfigMap" {
					t.Fatalf("events %v", evs)
				}
			},
		},
		{
			name: "status write leaves spec and generation",
			cmd:  cmd(&pb.Op{Type: pb.Op_STATUS, Object: &pb.Object{Kind: "ConfigMap", Namespace: "default", Name: "a", Status: []byte(`{"x":1}`)}}),
			check: func(t *testing.T, s *Store, r Result) {
				o, _ := s.Get("ConfigMap", "default", "a")
				if string(o.GetStatus()) != `{"x":1}` || o.GetGeneration() != 1 || string(o.GetSpec()) != `{"data":{"k":"1"}}` {
					t.Fatalf("bad object %v", o)
				}
			},
		},
		{
			name:    "status of a missing object",
			cmd:     cmd(&pb.Op{Type: pb.Op_STATUS, Object: cm("default", "zz", "")}),
			wantErr: ErrNotFound,
		},
		{
			name:    "create without a uid",
			cmd:     cmd(&pb.Op{Type: pb.Op_PUT, Object: cm("default", "b", "x")}),
			wantErr: ErrInvalid,
		},
		{
			name:    "object without a name",
			cmd:     cmd(put(&pb.Object{Kind: "ConfigMap", Namespace: "default"})),
			wantErr: ErrInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seeded(t)
			r := s.Apply(3, tt.cmd)
			if !errors.Is(r.Err, tt.wantErr) {
				t.Fatalf("err %v, want %v", r.Err, tt.wantErr)
			}
			var opErr *OpError
			if tt.wantErr != nil && !errors.As(r.Err, &opErr) {
				t.Fatalf("err %T is not an *OpError", r.Err)
			}
			if tt.check != nil {
				tt.check(t, s, r)
			}
		})
	}
}

func TestListBySelectorAndNamespace(t *testing.T) {
	s := seeded(t)
	s.Apply(3, cmd(put(ns("other")), put(cm("other", "b", "1")), put(cm("default", "c", "1"))))
	all, rev := s.List("ConfigMap", "", nil)
	if rev != 3 || len(all) != 3 || all[0].GetName() != "a" || all[1].GetName() != "c" || all[2].GetNamespace() != "other" {
		t.Fatalf("list all: rev %d %v", rev, all)
	}
	inDefault, _ := s.List("ConfigMap", "default", nil)
	if len(inDefault) != 2 {
		t.Fatalf("list default: %v", inDefault)
	}
	byLabel, _ := s.List("ConfigMap", "", func(o *pb.Object) bool { return o.GetLabels()["app"] == "b" })
	if len(byLabel) != 1 || byLabel[0].GetName() != "b" {
		t.Fatalf("list app=b: %v", byLabel)
	}
}

func TestWatchRingAndCompaction(t *testing.T) {
	s := NewWithRing(4)
	s.Apply(1, cmd(put(ns("default"))))
	for i := 2; i <= 20; i++ {
		s.Apply(uint64(i), cmd(put(cm("default", "a", fmt.Sprint(i)))))
	}
	evs, rev, err := s.EventsSince(18)
	if err != nil || rev != 20 || len(evs) != 2 || evs[0].Revision != 19 || evs[1].Revision != 20 {
		t.Fatalf("since 18: %v %d %v", evs, rev, err)
	}
	if _, _, err := s.EventsSince(2); !errors.Is(err, ErrCompacted) {
		t.Fatalf("since 2: want ErrCompacted, got %v", err)
	}
	if evs, _, err := s.EventsSince(20); err != nil || len(evs) != 0 {
		t.Fatalf("since 20: %v %v", evs, err)
	}
}

func TestWaitRevision(t *testing.T) {
	s := seeded(t)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.WaitRevision(ctx, 3)
	}()
	s.Apply(3, cmd(put(cm("default", "b", "1"))))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.WaitRevision(ctx, 99); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := seeded(t)
	s.Apply(3, cmd(put(ns("other")), put(cm("other", "b", "1"))))
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	sn, err := ReadSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	r.Restore(sn)
	if r.Revision() != 3 || r.Len() != 4 {
		t.Fatalf("restored rev %d len %d", r.Revision(), r.Len())
	}
	want, _ := s.Get("ConfigMap", "other", "b")
	got, _ := r.Get("ConfigMap", "other", "b")
	if !proto.Equal(want, got) {
		t.Fatalf("restored %v, want %v", got, want)
	}
	if _, _, err := r.EventsSince(1); !errors.Is(err, ErrCompacted) {
		t.Fatalf("events before a restore: want ErrCompacted, got %v", err)
	}
	// The same state writes the same bytes.
	var again bytes.Buffer
	if _, err := r.Snapshot().WriteTo(&again); err != nil || !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Fatalf("snapshot of a restored store differs (err %v)", err)
	}
}

func TestReadSnapshotRejectsBadInput(t *testing.T) {
	var good bytes.Buffer
	if _, err := seeded(t).Snapshot().WriteTo(&good); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", []byte("NOTASNAP\x01\x00\x00")},
		{"truncated", good.Bytes()[:good.Len()-3]},
		{"trailing data", append(bytes.Clone(good.Bytes()), 0)},
		{"count too high", append(append(bytes.Clone(snapshotMagic), 5, 9), good.Bytes()[len(snapshotMagic)+2:]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadSnapshot(bytes.NewReader(tt.data)); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func FuzzRestore(f *testing.F) {
	s := New()
	s.Apply(1, cmd(put(ns("default"))))
	s.Apply(2, cmd(put(cm("default", "a", "1"))))
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("SHOALSNAP\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sn, err := ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return
		}
		st := New()
		st.Restore(sn)
		var out bytes.Buffer
		if _, err := st.Snapshot().WriteTo(&out); err != nil {
			t.Fatalf("write restored snapshot: %v", err)
		}
		again, err := ReadSnapshot(&out)
		if err != nil || len(again.Objects) != len(sn.Objects) || again.Revision != sn.Revision {
			t.Fatalf("re-read: %v", err)
		}
	})
}

// TestApplyIsDeterministic replays one command sequence on two stores and
// compares their snapshots byte for byte.
func TestApplyIsDeterministic(t *testing.T) {
	cmds := []*pb.Command{
		cmd(put(ns("default")), put(ns("b"))),
		cmd(put(cm("default", "x", "1")), put(cm("b", "y", "1")), put(cm("b", "z", "1"))),
		cmd(del(ns("b"))),
		cmd(put(cm("default", "x", "2"))),
	}
	var snaps [2][]byte
	for i := range snaps {
		s := New()
		for j, c := range cmds {
			s.Apply(uint64(j+1), c)
		}
		var buf bytes.Buffer
		if _, err := s.Snapshot().WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		snaps[i] = buf.Bytes()
	}
	if !bytes.Equal(snaps[0], snaps[1]) {
		t.Fatal("two replays differ")
	}
}
