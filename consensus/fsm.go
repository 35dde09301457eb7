package consensus

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/consensus/state"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// entryCommand tags a log entry holding a pb.Command; the first byte leaves
// room for other entry types without a log format change.
const entryCommand byte = 1

func encodeCommand(cmd *pb.Command) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	return append([]byte{entryCommand}, b...), nil
}

// fsm adapts state.Store to raft.FSM.
type fsm struct {
	store   *state.Store
	metrics *metrics
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.apply(l)
}

// ApplyBatch lets raft hand over several committed entries at once.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	for i, l := range logs {
		out[i] = f.apply(l)
	}
	return out
}

func (f *fsm) apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) == 0 || l.Data[0] != entryCommand {
		// A log entry this version cannot read must stop the replica rather
		// than let it diverge from the others.
		panic(fmt.Sprintf("raft log entry %d: unknown entry type", l.Index))
	}
	var cmd pb.Command
	if err := proto.Unmarshal(l.Data[1:], &cmd); err != nil {
		panic(fmt.Sprintf("raft log entry %d: decode command: %v", l.Index, err))
	}
	res := f.store.Apply(l.Index, &cmd)
	f.metrics.applies.Inc()
	if res.Err != nil {
		f.metrics.refused.Inc()
	}
	return res
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{snap: f.store.Snapshot()}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	sn, err := state.ReadSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.store.Restore(sn)
	f.metrics.restores.Inc()
	return nil
}

type fsmSnapshot struct{ snap *state.Snapshot }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot at %d: %w", s.snap.Revision, err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
