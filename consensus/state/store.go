package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// Sentinel errors of a transaction; callers map them to API codes.
var (
	ErrNotFound  = errors.New("not found")
	ErrExists    = errors.New("already exists")
	ErrConflict  = errors.New("resource version conflict")
	ErrInvalid   = errors.New("invalid operation")
	ErrCompacted = errors.New("revision compacted")
	// ErrRefused is a BIND the Binder turned down: the node cannot take
	// the pod as things stand.
	ErrRefused = errors.New("refused")
)

// NamespaceKind is the one kind the store knows by name: a namespaced object
// needs its Namespace to exist, and deleting a Namespace deletes its objects.
const NamespaceKind = "Namespace"

// DefaultRingSize is how many recent events the watch ring keeps.
const DefaultRingSize = 8192

// OpError says which op of a transaction failed and why. Nothing of the
// transaction was applied.
type OpError struct {
	Index int    // position of the op in the transaction
	Key   string // Key of the op's object
	Err   error  // one of the sentinel errors, wrapped with detail
}

func (e *OpError) Error() string { return fmt.Sprintf("op %d (%s): %v", e.Index, e.Key, e.Err) }
func (e *OpError) Unwrap() error { return e.Err }

// Result is what applying one Command produced.
type Result struct {
	Revision uint64 // the log index of the command
	Results  []*pb.OpResult
	Err      error // non-nil when the transaction was refused as a whole
}

// Event is one change in the watch ring.
type Event struct {
	Type     pb.WatchEvent_Type
	Object   *pb.Object // for DELETED, the object as it was
	Revision uint64
}

// Key is the store key of an object: kind/namespace/name. Cluster-scoped
// objects have an empty namespace.
func Key(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// KeyOf is Key for an object.
func KeyOf(o *pb.Object) string { return Key(o.GetKind(), o.GetNamespace(), o.GetName()) }

// Index files the objects of one kind under a value computed from each, such
// as pods under the node they are bound to. Value must be a pure function of
// the object; "" leaves the object out.
type Index struct {
	Kind  string
	Value func(*pb.Object) string
	// Values, when set instead of Value, files an object under several
	// values (a service under each of its node ports).
	Values func(*pb.Object) []string
	// SpecOnly says Value reads only the spec, so a change that leaves the
	// spec alone (a status report) need not call it again.
	SpecOnly bool
}

// View is the store as one op of a transaction sees it during apply: the
// committed objects with the transaction's earlier ops applied.
type View interface {
	// Get returns the object, nil when absent.
	Get(kind, namespace, name string) *pb.Object
	// Indexed returns the objects filed under value by the named index,
	// sorted by key.
	Indexed(index, value string) []*pb.Object
}

// Binder admits a BIND op during apply: it returns the new spec of obj
// assigned to node, or why node cannot take it. It must be deterministic
// (a pure function of its arguments and of what v returns): every replica
// applies the same log and must reach the same answer.
type Binder func(v View, obj *pb.Object, node string) (spec []byte, err error)

// Options configure a Store.
type Options struct {
	// RingSize is how many recent events the watch ring keeps
	// (DefaultRingSize when zero).
	RingSize int
	// Indexes are secondary indexes by name, kept on every change.
	Indexes map[string]Index
	// Binder admits BIND ops; without one they are refused as invalid.
	Binder Binder
	// Admit, when set, checks every PUT in apply: cur is the stored object
	// (nil on create), next what the PUT would store. An error refuses the
	// transaction. Like Binder it must be deterministic.
	Admit func(v View, cur, next *pb.Object) error
}

// Store is the revisioned object store. Stored objects are never modified
// once inserted (changes insert new values), so readers may keep and share
// the pointers they get, but must not modify them.
type Store struct {
	mu      sync.RWMutex
	rev     uint64                           // last applied log index
	objects map[string]map[string]*pb.Object // kind -> key -> object
	count   int

	ring      []Event // recent events, oldest first
	ringSize  int
	compacted uint64 // events at or below this revision are gone from the ring

	changed chan struct{} // closed and replaced on every apply or restore

	indexes map[string]*index
	binder  Binder
	admit   func(v View, cur, next *pb.Object) error
}

type index struct {
	Index
	byValue  map[string]map[string]*pb.Object // value -> key -> object
	valuesOf map[string][]string              // key -> values, for the indexed
}

func newIndex(def Index) *index {
	return &index{Index: def, byValue: map[string]map[string]*pb.Object{}, valuesOf: map[string][]string{}}
}

// values are the values o is filed under.
func (ix *index) values(o *pb.Object) []string {
	if ix.Values != nil {
		return slices.DeleteFunc(slices.Clone(ix.Values(o)), func(v string) bool { return v == "" })
	}
	if v := ix.Value(o); v != "" {
		return []string{v}
	}
	return nil
}

// update files key's new object o (nil when deleted) in place of old.
func (ix *index) update(key string, old, o *pb.Object) {
	if kindOfKey(key) != ix.Kind {
		return
	}
	prev, had := ix.valuesOf[key]
	var vals []string
	switch {
	case o == nil:
	case ix.SpecOnly && old != nil && had && bytes.Equal(old.GetSpec(), o.GetSpec()):
		vals = prev // a status change: the values cannot have moved
	default:
		vals = ix.values(o)
	}
	for _, v := range prev {
		if slices.Contains(vals, v) {
			continue
		}
		if m := ix.byValue[v]; m != nil {
			delete(m, key)
			if len(m) == 0 {
				delete(ix.byValue, v)
			}
		}
	}
	if len(vals) == 0 {
		delete(ix.valuesOf, key)
		return
	}
	for _, v := range vals {
		m := ix.byValue[v]
		if m == nil {
			m = map[string]*pb.Object{}
			ix.byValue[v] = m
		}
		m[key] = o
	}
	ix.valuesOf[key] = vals
}

// New returns an empty store at revision 0.
func New() *Store { return NewWithOptions(Options{}) }

// NewWithRing returns an empty store whose watch ring keeps size events.
func NewWithRing(size int) *Store { return NewWithOptions(Options{RingSize: size}) }

// NewWithOptions returns an empty store at revision 0.
func NewWithOptions(opts Options) *Store {
	size := opts.RingSize
	if size == 0 {
		size = DefaultRingSize
	}
	if size < 1 {
		size = 1
	}
	s := &Store{
		objects:  map[string]map[string]*pb.Object{},
		ringSize: size,
		changed:  make(chan struct{}),
		indexes:  map[string]*index{},
		binder:   opts.Binder,
		admit:    opts.Admit,
	}
	for name, def := range opts.Indexes {
		s.indexes[name] = newIndex(def)
	}
	return s
}

// Indexed returns the objects the named index files under value, sorted by
// namespace and name; nil for an unknown index.
func (s *Store) Indexed(name, value string) []*pb.Object {
	s.mu.RLock()
	ix := s.indexes[name]
	var out []*pb.Object
	if ix != nil {
		for _, o := range ix.byValue[value] {
			out = append(out, o)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, compareObjects)
	return out
}

// Revision is the index of the last applied log entry.
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Len is the number of stored objects.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count
}

// Changed returns a channel that is closed at the next apply or restore.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// WaitRevision blocks until the store has applied rev or ctx ends.
func (s *Store) WaitRevision(ctx context.Context, rev uint64) error {
	for {
		s.mu.RLock()
		cur, ch := s.rev, s.changed
		s.mu.RUnlock()
		if cur >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for revision %d (replica at %d): %w", rev, cur, ctx.Err())
		}
	}
}

// Get returns the object and the store revision; nil when absent.
func (s *Store) Get(kind, namespace, name string) (*pb.Object, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.objects[kind][Key(kind, namespace, name)], s.rev
}

// List returns the objects of a kind, in one namespace (or all when
// namespace is empty), for which match returns true (all when nil), sorted
// by namespace and name.
func (s *Store) List(kind, namespace string, match func(*pb.Object) bool) ([]*pb.Object, uint64) {
	s.mu.RLock()
	out := make([]*pb.Object, 0, len(s.objects[kind]))
	for _, o := range s.objects[kind] {
		if namespace != "" && o.GetNamespace() != namespace {
			continue
		}
		if match != nil && !match(o) {
			continue
		}
		out = append(out, o)
	}
	rev := s.rev
	s.mu.RUnlock()
	slices.SortFunc(out, compareObjects)
	return out, rev
}

func compareObjects(a, b *pb.Object) int {
	if c := cmpString(a.GetNamespace(), b.GetNamespace()); c != 0 {
		return c
	}
	return cmpString(a.GetName(), b.GetName())
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// EventsSince returns the events after rev, oldest first, and the revision
// they reach. It fails with ErrCompacted when events after rev have left the
// ring; the caller must list again.
func (s *Store) EventsSince(rev uint64) ([]Event, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if rev < s.compacted {
		return nil, s.rev, fmt.Errorf("events after %d: oldest kept is after %d: %w", rev, s.compacted, ErrCompacted)
	}
	i, _ := slices.BinarySearchFunc(s.ring, rev+1, func(e Event, r uint64) int {
		switch {
		case e.Revision < r:
			return -1
		case e.Revision > r:
			return 1
		}
		return 0
	})
	return slices.Clone(s.ring[i:]), s.rev, nil
}

// Apply applies one committed command at log index. It never fails as a
// whole: a refused transaction comes back in Result.Err, and the revision
// still moves to index.
func (s *Store) Apply(index uint64, cmd *pb.Command) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	if index > s.rev {
		s.rev = index
	}
	tx := txn{s: s, index: index, time: cmd.GetTimeUnixNano(), pending: map[string]*pb.Object{}}
	results := make([]*pb.OpResult, len(cmd.GetOps()))
	for i, op := range cmd.GetOps() {
		r, err := tx.apply(op)
		if err != nil {
			return Result{Revision: index, Err: &OpError{Index: i, Key: KeyOf(op.GetObject()), Err: err}}
		}
		results[i] = r
	}
	tx.commit()
	return Result{Revision: index, Results: results}
}

func (s *Store) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// txn stages the ops of one command; nothing touches the store until commit.
type txn struct {
	s       *Store
	index   uint64
	time    int64
	pending map[string]*pb.Object // key -> new value, nil for deleted
	order   []string              // keys in the order they changed
	events  []Event
}

func (t *txn) get(kind, key string) *pb.Object {
	if o, ok := t.pending[key]; ok {
		return o
	}
	return t.s.objects[kind][key]
}

// Get is View.Get.
func (t *txn) Get(kind, namespace, name string) *pb.Object {
	return t.get(kind, Key(kind, namespace, name))
}

// Indexed is View.Indexed: the committed index with this transaction's
// pending changes laid over it.
func (t *txn) Indexed(name, value string) []*pb.Object {
	ix := t.s.indexes[name]
	if ix == nil {
		return nil
	}
	committed := ix.byValue[value]
	out := make([]*pb.Object, 0, len(committed))
	for key, o := range committed {
		if _, changed := t.pending[key]; !changed {
			out = append(out, o)
		}
	}
	for key, o := range t.pending {
		if o != nil && kindOfKey(key) == ix.Kind && slices.Contains(ix.values(o), value) {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, compareObjects)
	return out
}

func (t *txn) set(key string, o *pb.Object, ev Event) {
	if _, ok := t.pending[key]; !ok {
		t.order = append(t.order, key)
	}
	t.pending[key] = o
	t.events = append(t.events, ev)
}

func (t *txn) apply(op *pb.Op) (*pb.OpResult, error) {
	in := op.GetObject()
	if in.GetKind() == "" || in.GetName() == "" {
		return nil, fmt.Errorf("%w: object kind and name are required", ErrInvalid)
	}
	key := KeyOf(in)
	cur := t.get(in.GetKind(), key)
	if op.GetMustCreate() && cur != nil {
		return nil, fmt.Errorf("%s %q: %w", in.GetKind(), in.GetName(), ErrExists)
	}
	if want := op.GetExpectRevision(); want != 0 {
		if cur == nil {
			return nil, fmt.Errorf("%s %q expected at revision %d: %w", in.GetKind(), in.GetName(), want, ErrNotFound)
		}
		if cur.GetResourceVersion() != want {
			return nil, fmt.Errorf("%s %q is at revision %d, not %d: %w", in.GetKind(), in.GetName(), cur.GetResourceVersion(), want, ErrConflict)
		}
	}
	switch op.GetType() {
	case pb.Op_PUT:
		return t.put(key, cur, op)
	case pb.Op_STATUS:
		if cur == nil {
			return nil, fmt.Errorf("%s %q: %w", in.GetKind(), in.GetName(), ErrNotFound)
		}
		if string(cur.GetStatus()) == string(in.GetStatus()) {
			return &pb.OpResult{Object: cur, Unchanged: true}, nil
		}
		// Stored objects are never modified, so the new one shares all
		// but its status with the old.
		next := withStatus(cur, slices.Clone(in.GetStatus()), t.index)
		t.set(key, next, Event{Type: pb.WatchEvent_MODIFIED, Object: next, Revision: t.index})
		return &pb.OpResult{Object: next}, nil
	case pb.Op_BIND:
		return t.bind(key, cur, op)
	case pb.Op_DELETE:
		if cur == nil {
			return nil, fmt.Errorf("%s %q: %w", in.GetKind(), in.GetName(), ErrNotFound)
		}
		t.set(key, nil, Event{Type: pb.WatchEvent_DELETED, Object: cur, Revision: t.index})
		if in.GetKind() == NamespaceKind {
			t.deleteNamespaced(in.GetName())
		}
		return &pb.OpResult{Object: cur, Deleted: true}, nil
	}
	return nil, fmt.Errorf("%w: unknown op type %d", ErrInvalid, op.GetType())
}

// bind assigns cur to op.Node if the Binder admits it. The object's
// generation stays: a bind is the system's placement, not a user's change.
func (t *txn) bind(key string, cur *pb.Object, op *pb.Op) (*pb.OpResult, error) {
	in := op.GetObject()
	if cur == nil {
		return nil, fmt.Errorf("%s %q: %w", in.GetKind(), in.GetName(), ErrNotFound)
	}
	if t.s.binder == nil {
		return nil, fmt.Errorf("%w: this store does not bind objects", ErrInvalid)
	}
	if op.GetNode() == "" {
		return nil, fmt.Errorf("%w: bind of %s names no node", ErrInvalid, key)
	}
	if uid := in.GetUid(); uid != "" && uid != cur.GetUid() {
		return nil, fmt.Errorf("%s %q has uid %s, not %s: %w", in.GetKind(), in.GetName(), cur.GetUid(), uid, ErrConflict)
	}
	spec, err := t.s.binder(t, cur, op.GetNode())
	if err != nil {
		return nil, fmt.Errorf("%s %q on node %q: %v: %w", in.GetKind(), in.GetName(), op.GetNode(), err, ErrRefused)
	}
	next := withStatus(cur, cur.GetStatus(), t.index)
	next.Spec = spec
	t.set(key, next, Event{Type: pb.WatchEvent_MODIFIED, Object: next, Revision: t.index})
	return &pb.OpResult{Object: next}, nil
}

func (t *txn) put(key string, cur *pb.Object, op *pb.Op) (*pb.OpResult, error) {
	in := op.GetObject()
	if ns := in.GetNamespace(); ns != "" && t.get(NamespaceKind, Key(NamespaceKind, "", ns)) == nil {
		return nil, fmt.Errorf("namespace %q: %w", ns, ErrNotFound)
	}
	if cur != nil && sameContent(cur, in) {
		return &pb.OpResult{Object: cur, Unchanged: true}, nil
	}
	next := &pb.Object{
		Kind:            in.GetKind(),
		ApiVersion:      in.GetApiVersion(),
		Namespace:       in.GetNamespace(),
		Name:            in.GetName(),
		ResourceVersion: t.index,
		Labels:          in.GetLabels(),
		Annotations:     in.GetAnnotations(),
		OwnerReferences: in.GetOwnerReferences(),
		Spec:            in.GetSpec(),
	}
	next = proto.CloneOf(next) // own every map and slice
	if t.s.admit != nil {
		if err := t.s.admit(t, cur, next); err != nil {
			return nil, err
		}
	}
	created := cur == nil
	if created {
		if op.GetNewUid() == "" {
			return nil, fmt.Errorf("%w: creating %s needs a uid from the proposer", ErrInvalid, key)
		}
		next.Uid = op.GetNewUid()
		next.CreateRevision = t.index
		next.CreateTimeUnixNano = t.time
		next.Generation = 1
		next.Status = slices.Clone(in.GetStatus())
		t.set(key, next, Event{Type: pb.WatchEvent_ADDED, Object: next, Revision: t.index})
	} else {
		next.Uid = cur.GetUid()
		next.CreateRevision = cur.GetCreateRevision()
		next.CreateTimeUnixNano = cur.GetCreateTimeUnixNano()
		next.Generation = cur.GetGeneration()
		if string(cur.GetSpec()) != string(in.GetSpec()) {
			next.Generation++
		}
		next.Status = cur.GetStatus()
		t.set(key, next, Event{Type: pb.WatchEvent_MODIFIED, Object: next, Revision: t.index})
	}
	return &pb.OpResult{Object: next, Created: created}, nil
}

// deleteNamespaced stages the deletion of every object in namespace ns, in
// key order so that the events are the same on every replica.
func (t *txn) deleteNamespaced(ns string) {
	var keys []string
	kinds := map[string]string{}
	for kind, objs := range t.s.objects {
		for key, o := range objs {
			if o.GetNamespace() == ns {
				keys = append(keys, key)
				kinds[key] = kind
			}
		}
	}
	for key, o := range t.pending {
		if o != nil && o.GetNamespace() == ns {
			if _, ok := kinds[key]; !ok {
				keys = append(keys, key)
				kinds[key] = o.GetKind()
			}
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		if o := t.get(kinds[key], key); o != nil {
			t.set(key, nil, Event{Type: pb.WatchEvent_DELETED, Object: o, Revision: t.index})
		}
	}
}

// withStatus returns a new object with o's content, status and revision rev.
func withStatus(o *pb.Object, status []byte, rev uint64) *pb.Object {
	return &pb.Object{
		Kind: o.GetKind(), ApiVersion: o.GetApiVersion(), Namespace: o.GetNamespace(), Name: o.GetName(),
		Uid: o.GetUid(), ResourceVersion: rev, CreateRevision: o.GetCreateRevision(), Generation: o.GetGeneration(),
		CreateTimeUnixNano: o.GetCreateTimeUnixNano(), Labels: o.GetLabels(), Annotations: o.GetAnnotations(),
		OwnerReferences: o.GetOwnerReferences(), Spec: o.GetSpec(), Status: status,
	}
}

func sameContent(cur, in *pb.Object) bool {
	return cur.GetApiVersion() == in.GetApiVersion() &&
		string(cur.GetSpec()) == string(in.GetSpec()) &&
		maps.Equal(cur.GetLabels(), in.GetLabels()) &&
		maps.Equal(cur.GetAnnotations(), in.GetAnnotations()) &&
		slices.EqualFunc(cur.GetOwnerReferences(), in.GetOwnerReferences(), func(a, b *pb.OwnerReference) bool {
			return proto.Equal(a, b)
		})
}

func (t *txn) commit() {
	s := t.s
	for _, key := range t.order {
		o := t.pending[key]
		kind := kindOfKey(key)
		objs := s.objects[kind]
		old, existed := objs[key]
		for _, ix := range s.indexes {
			ix.update(key, old, o)
		}
		if o == nil {
			if existed {
				delete(objs, key)
				s.count--
			}
			continue
		}
		if objs == nil {
			objs = map[string]*pb.Object{}
			s.objects[kind] = objs
		}
		if !existed {
			s.count++
		}
		objs[key] = o
	}
	s.ring = append(s.ring, t.events...)
	// Trim the ring only when it has grown to twice its size, so a write
	// costs amortised O(1) here.
	if len(s.ring) > 2*s.ringSize {
		over := len(s.ring) - s.ringSize
		s.compacted = s.ring[over-1].Revision
		// Keep whole revisions: drop the rest of a partly dropped command.
		for over < len(s.ring) && s.ring[over].Revision == s.compacted {
			over++
		}
		s.ring = slices.Clone(s.ring[over:])
	}
}

func kindOfKey(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i]
		}
	}
	return key
}
