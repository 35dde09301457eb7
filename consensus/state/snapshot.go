package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"google.golang.org/protobuf/encoding/protodelim"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// snapshotMagic starts every snapshot; the last byte is the format version.
var snapshotMagic = []byte("SHOALSNAP\x01")

// maxSnapshotObject bounds one encoded object on restore (a Kubernetes
// object is at most about 1.5 MiB).
const maxSnapshotObject = 16 << 20

// Snapshot is a point-in-time copy of the store, cheap to take (objects are
// immutable, so it shares them) and written out later without the lock.
type Snapshot struct {
	Revision uint64
	Objects  []*pb.Object
}

// Snapshot captures the store at its current revision.
func (s *Store) Snapshot() *Snapshot {
	s.mu.RLock()
	objs := make([]*pb.Object, 0, s.count)
	for _, byKey := range s.objects {
		for _, o := range byKey {
			objs = append(objs, o)
		}
	}
	rev := s.rev
	s.mu.RUnlock()
	// Sorted so that two replicas at one revision write the same bytes.
	slices.SortFunc(objs, func(a, b *pb.Object) int { return cmpString(KeyOf(a), KeyOf(b)) })
	return &Snapshot{Revision: rev, Objects: objs}
}

// WriteTo encodes the snapshot: magic, revision, count, then each object
// length-delimited.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	n, _ := bw.Write(snapshotMagic)
	total := int64(n)
	var hdr [2 * binary.MaxVarintLen64]byte
	h := binary.AppendUvarint(hdr[:0], sn.Revision)
	h = binary.AppendUvarint(h, uint64(len(sn.Objects)))
	n, _ = bw.Write(h)
	total += int64(n)
	for _, o := range sn.Objects {
		n, err := protodelim.MarshalTo(bw, o)
		total += int64(n)
		if err != nil {
			return total, fmt.Errorf("write snapshot object %s: %w", KeyOf(o), err)
		}
	}
	return total, bw.Flush()
}

// ReadSnapshot decodes what WriteTo wrote. It checks the whole input and
// fails on any malformed part.
func ReadSnapshot(r io.Reader) (*Snapshot, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return nil, fmt.Errorf("read snapshot header: %w", err)
	}
	if string(magic) != string(snapshotMagic) {
		return nil, errors.New("read snapshot header: not a Shoal snapshot (bad magic)")
	}
	rev, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("read snapshot revision: %w", err)
	}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("read snapshot object count: %w", err)
	}
	sn := &Snapshot{Revision: rev}
	seen := map[string]bool{}
	opts := protodelim.UnmarshalOptions{MaxSize: maxSnapshotObject}
	for i := uint64(0); i < count; i++ {
		o := &pb.Object{}
		if err := opts.UnmarshalFrom(br, o); err != nil {
			return nil, fmt.Errorf("read snapshot object %d of %d: %w", i+1, count, err)
		}
		if o.GetKind() == "" || o.GetName() == "" {
			return nil, fmt.Errorf("read snapshot object %d of %d: kind and name are required", i+1, count)
		}
		key := KeyOf(o)
		if seen[key] {
			return nil, fmt.Errorf("read snapshot object %d of %d: duplicate %s", i+1, count, key)
		}
		seen[key] = true
		sn.Objects = append(sn.Objects, o)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, errors.New("read snapshot: trailing data after the last object")
	}
	return sn, nil
}

// Restore replaces the whole store with the snapshot. Watchers from before
// it get ErrCompacted and must list again.
func (s *Store) Restore(sn *Snapshot) {
	objects := map[string]map[string]*pb.Object{}
	for _, o := range sn.Objects {
		byKey := objects[o.GetKind()]
		if byKey == nil {
			byKey = map[string]*pb.Object{}
			objects[o.GetKind()] = byKey
		}
		byKey[KeyOf(o)] = o
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects = objects
	for name, ix := range s.indexes {
		ix = newIndex(ix.Index)
		s.indexes[name] = ix
		for _, byKey := range objects {
			for key, o := range byKey {
				ix.update(key, nil, o)
			}
		}
	}
	s.count = len(sn.Objects)
	s.rev = sn.Revision
	s.ring = nil
	s.compacted = sn.Revision
	s.notifyLocked()
}
