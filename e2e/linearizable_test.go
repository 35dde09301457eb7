package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/client"
	"github.com/shoal-dev/shoal/e2e/harness"
	"github.com/shoal-dev/shoal/internal/waitfor"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// kvInput and kvOutput are one register operation on a key.
type kvInput struct {
	Put   bool
	Key   string
	Value string
}

type kvOutput struct {
	Value   string
	Unknown bool // a write whose outcome the client could not learn
}

// registerModel is a map of registers, partitioned by key.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		in, out, st := input.(kvInput), output.(kvOutput), state.(string)
		if in.Put {
			return true, in.Value
		}
		return out.Value == st, st
	},
	Equal: func(a, b interface{}) bool { return a == b },
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(kvInput), output.(kvOutput)
		if in.Put {
			if out.Unknown {
				return fmt.Sprintf("put(%s, %s) -> ?", in.Key, in.Value)
			}
			return fmt.Sprintf("put(%s, %s)", in.Key, in.Value)
		}
		return fmt.Sprintf("get(%s) -> %q", in.Key, out.Value)
	},
}

// history records operations from many clients.
type history struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
}

func (h *history) add(client int, in kvInput, call, ret time.Time, out kvOutput) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call.Sub(h.start).Nanoseconds(),
		Output: out, Return: ret.Sub(h.start).Nanoseconds()})
}

func putOp(key, value string) *pb.TxnRequest {
	spec, _ := json.Marshal(map[string]any{"data": map[string]string{"v": value}})
	return &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: &pb.Object{
		Kind: "ConfigMap", ApiVersion: "v1", Namespace: "default", Name: key, Spec: spec,
	}}}}
}

// definitelyNotApplied reports whether a failed write surely did nothing.
func definitelyNotApplied(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Aborted, codes.FailedPrecondition:
		return true
	}
	return false
}

// TestLinearizableAcrossLeaderKills runs concurrent writes and
// linearizable reads through every agent while the leader is SIGKILLed
// again and again, then checks the history with porcupine (acceptance 3).
func TestLinearizableAcrossLeaderKills(t *testing.T) {
	skipShort(t)
	kills := 3
	if v, err := strconv.Atoi(os.Getenv("SHOAL_CHAOS_KILLS")); err == nil && v > 0 {
		kills = v
	}
	c := harness.New(t, 5, harness.Options{BootstrapExpect: 3})
	c.StartAll()
	c.WaitFormed(60*time.Second, 3, 2)

	conns := map[string]*client.Conn{}
	for _, a := range c.Agents {
		conns[a.Name] = c.Client(a)
	}
	h := &history{start: time.Now()}
	keys := []string{"lin-a", "lin-b", "lin-c"}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var counts sync.Map
	const clients = 6
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(cl), 7))
			for seq := 0; ctx.Err() == nil; seq++ {
				a := c.Agents[rng.IntN(len(c.Agents))]
				if !a.Running() {
					continue
				}
				conn := conns[a.Name]
				key := keys[rng.IntN(len(keys))]
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				call := time.Now()
				if rng.IntN(2) == 0 {
					value := fmt.Sprintf("c%d-%d", cl, seq)
					_, err := conn.Txn(cctx, putOp(key, value))
					ret := time.Now()
					switch {
					case err == nil:
						h.add(cl, kvInput{Put: true, Key: key, Value: value}, call, ret, kvOutput{})
						counts.Store(fmt.Sprintf("ok-%d-%d", cl, seq), true)
					case definitelyNotApplied(err):
					default:
						// Unknown outcome: it may take effect at any time after
						// the call, so its return is the end of the history.
						h.add(cl, kvInput{Put: true, Key: key, Value: value}, call, call.Add(time.Hour), kvOutput{Unknown: true})
					}
				} else {
					resp, err := conn.Get(cctx, &pb.GetRequest{Kind: "ConfigMap", Namespace: "default", Name: key,
						Read: &pb.ReadOptions{Linearizable: true}})
					ret := time.Now()
					switch {
					case err == nil:
						var spec struct {
							Data map[string]string `json:"data"`
						}
						_ = json.Unmarshal(resp.GetObject().GetSpec(), &spec)
						h.add(cl, kvInput{Key: key}, call, ret, kvOutput{Value: spec.Data["v"]})
					case status.Code(err) == codes.NotFound:
						h.add(cl, kvInput{Key: key}, call, ret, kvOutput{Value: ""})
					}
				}
				cancel()
			}
		}()
	}

	for k := 0; k < kills; k++ {
		waitfor.Cond(t, 30*time.Second, "some writes before the kill", func() (bool, string) {
			n := 0
			counts.Range(func(_, _ any) bool { n++; return true })
			return n > (k+1)*20, fmt.Sprintf("%d acknowledged writes", n)
		})
		leader, err := c.Leader()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kill %d: SIGKILL leader %s", k+1, leader.Name)
		c.Kill(leader)
		// Writes resume and the autopilot restores three live voters.
		var survivor *harness.Agent
		for _, a := range c.Agents {
			if a.Running() {
				survivor = a
				break
			}
		}
		waitfor.Cond(t, 30*time.Second, "a new leader and 3 live voters", func() (bool, string) {
			v, err := c.Raft(survivor)
			if err != nil {
				return false, err.Error()
			}
			lv, _ := v.LiveVoters()
			return v.Leader != "" && v.Leader != leader.Name && lv == 3, fmt.Sprintf("%+v", v)
		})
		c.Start(leader)
		c.WaitFormed(60*time.Second, 3, 2)
	}
	stop()
	wg.Wait()

	// A final linearizable read of every key through every agent.
	for _, a := range c.Agents {
		for _, key := range keys {
			// The agent may have restarted moments ago: wait for the client's
			// connection to be ready again instead of failing fast on the
			// error it cached while the agent was down.
			call := time.Now()
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			resp, err := conns[a.Name].Get(rctx, &pb.GetRequest{Kind: "ConfigMap", Namespace: "default", Name: key,
				Read: &pb.ReadOptions{Linearizable: true}}, grpc.WaitForReady(true))
			cancel()
			if err != nil && status.Code(err) != codes.NotFound {
				t.Fatalf("final read of %s on %s: %v", key, a.Name, err)
			}
			var spec struct {
				Data map[string]string `json:"data"`
			}
			if err == nil {
				_ = json.Unmarshal(resp.GetObject().GetSpec(), &spec)
			}
			h.add(100, kvInput{Key: key}, call, time.Now(), kvOutput{Value: spec.Data["v"]})
		}
	}

	res, info := porcupine.CheckOperationsVerbose(registerModel, h.ops, 2*time.Minute)
	t.Logf("%d operations over %d leader kills: %v", len(h.ops), kills, res)
	if res != porcupine.Ok {
		p := filepath.Join(os.TempDir(), "shoal-linearizability.html")
		if f, err := os.Create(p); err == nil {
			_ = porcupine.Visualize(registerModel, info, f)
			f.Close()
		}
		t.Fatalf("history is not linearizable (%v); visualisation in %s", res, p)
	}
}

// TestRegisterModelRejectsStaleRead shows the checker can fail: a read that
// returns an overwritten value after the overwrite completed is illegal.
func TestRegisterModelRejectsStaleRead(t *testing.T) {
	ops := []porcupine.Operation{
		{ClientId: 0, Input: kvInput{Put: true, Key: "k", Value: "1"}, Call: 0, Output: kvOutput{}, Return: 10},
		{ClientId: 0, Input: kvInput{Put: true, Key: "k", Value: "2"}, Call: 20, Output: kvOutput{}, Return: 30},
		{ClientId: 1, Input: kvInput{Key: "k"}, Call: 40, Output: kvOutput{Value: "1"}, Return: 50},
	}
	if res := porcupine.CheckOperations(registerModel, ops); res {
		t.Fatal("a stale read was accepted as linearizable")
	}
	// An unknown-outcome write may explain a later read.
	ops[1].Output, ops[1].Return = kvOutput{Unknown: true}, 1<<62
	ops = append(ops, porcupine.Operation{ClientId: 1, Input: kvInput{Key: "k"}, Call: 60, Output: kvOutput{Value: "2"}, Return: 70})
	ops[2].Output = kvOutput{Value: "1"}
	if res := porcupine.CheckOperations(registerModel, ops); !res {
		t.Fatal("a history explained by an unknown-outcome write was rejected")
	}
}
