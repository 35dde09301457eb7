package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdCluster is three members of Debian's etcd on 127.0.201.2-4 with
// etcd's default timing (heartbeat 100ms, election 1000ms): the reference.
type etcdCluster struct {
	procs []*proc.Proc
	eps   []string
	clis  []*clientv3.Client
	// ids are the member ids, learnt from each member's Status.
	ids []uint64
}

func newEtcd(bin, dir string) (*etcdCluster, error) {
	e := &etcdCluster{ids: make([]uint64, members)}
	var initial []string
	for i := range members {
		initial = append(initial, fmt.Sprintf("e%d=http://%s:2380", i+1, etcdIP(i)))
	}
	for i := range members {
		name, ip := fmt.Sprintf("e%d", i+1), etcdIP(i)
		data := filepath.Join(dir, name)
		if err := os.MkdirAll(data, 0o700); err != nil {
			return nil, err
		}
		client, peer := "http://"+ip+":2379", "http://"+ip+":2380"
		e.eps = append(e.eps, client)
		e.procs = append(e.procs, &proc.Proc{
			Name: "etcd " + name, Bin: bin, LogPath: data + ".log",
			Args: []string{"--name", name, "--data-dir", data,
				"--listen-client-urls", client, "--advertise-client-urls", client,
				"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
				"--initial-cluster", strings.Join(initial, ","),
				"--initial-cluster-token", "shoal-storebench", "--initial-cluster-state", "new",
				"--logger", "zap", "--log-outputs", "stderr"},
		})
		cli, err := e.dial(i)
		if err != nil {
			return nil, err
		}
		e.clis = append(e.clis, cli)
	}
	return e, nil
}

func etcdIP(i int) string { return fmt.Sprintf("127.0.201.%d", i+2) }

// dial makes a client that talks to one member only, as a shoal client
// talks to one agent; etcd forwards the write to its leader.
func (e *etcdCluster) dial(member int) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.eps[member]}, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd client for e%d: %w", member+1, err)
	}
	return cli, nil
}

func etcdVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "unknown version"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}

func (e *etcdCluster) name() string           { return "etcd" }
func (e *etcdCluster) procList() []*proc.Proc { return e.procs }

func (e *etcdCluster) start() error {
	for _, p := range e.procs {
		if err := p.Start(); err != nil {
			return err
		}
	}
	return nil
}

func (e *etcdCluster) put(ctx context.Context, member int, key string, val []byte) error {
	_, err := e.clis[member].Put(ctx, "/bench/"+key, string(val))
	return err
}

func (e *etcdCluster) leader(ctx context.Context) (int, error) {
	var errs []error
	for i, cli := range e.clis {
		if e.procs[i].Exited() {
			continue
		}
		st, err := cli.Status(ctx, e.eps[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for j, id := range e.ids {
			if id != 0 && id == st.Leader && !e.procs[j].Exited() {
				return j, nil
			}
		}
		errs = append(errs, fmt.Errorf("e%d sees leader %x", i+1, st.Leader))
	}
	return 0, fmt.Errorf("etcd leader: %w", errors.Join(errs...))
}

func (e *etcdCluster) kill(member int) error { return e.procs[member].Sigkill() }

// restart starts a killed member on its data directory and dials it afresh.
func (e *etcdCluster) restart(member int) error {
	if err := e.procs[member].Restart(); err != nil {
		return err
	}
	_ = e.clis[member].Close()
	cli, err := e.dial(member)
	if err != nil {
		return err
	}
	e.clis[member] = cli
	return nil
}

// healthy is nil when every member runs, answers Status without errors,
// all agree on one leader, and each takes a write.
func (e *etcdCluster) healthy(ctx context.Context) error {
	var leader uint64
	for i, cli := range e.clis {
		name := fmt.Sprintf("e%d", i+1)
		if e.procs[i].Exited() {
			return fmt.Errorf("%s has exited", name)
		}
		st, err := cli.Status(ctx, e.eps[i])
		if err != nil {
			return fmt.Errorf("status of %s: %w", name, err)
		}
		e.ids[i] = st.Header.GetMemberId()
		if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			return fmt.Errorf("%s sees leader %x (others: %x)", name, st.Leader, leader)
		}
		leader = st.Leader
		if len(st.Errors) > 0 {
			return fmt.Errorf("%s reports %v", name, st.Errors)
		}
	}
	for i := range e.clis {
		if err := e.put(ctx, i, "health", payload(0)); err != nil {
			return fmt.Errorf("write through e%d: %w", i+1, err)
		}
	}
	return nil
}

func (e *etcdCluster) close() error {
	var errs []error
	for i, p := range e.procs {
		_ = e.clis[i].Close()
		errs = append(errs, p.Stop())
	}
	return errors.Join(errs...)
}
