package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/e2e/bench/internal/proc"
	"net"
	"os"
	"path/filepath"

	"github.com/shoal-dev/shoal/client"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// shoalCluster is three shoal agents on 127.0.200.2-4 with the default
// ports, started the way the e2e harness starts them.
type shoalCluster struct {
	procs []*proc.Proc
	ips   []string
	conns []*client.Conn
}

func newShoal(bin, dir string) (*shoalCluster, error) {
	s := &shoalCluster{}
	seed := shoalIP(0)
	for i := range members {
		name, ip := fmt.Sprintf("n%d", i+1), shoalIP(i)
		data := filepath.Join(dir, name)
		if err := os.MkdirAll(data, 0o755); err != nil {
			return nil, err
		}
		s.ips = append(s.ips, ip)
		s.procs = append(s.procs, &proc.Proc{
			Name: "shoal " + name, Bin: bin, LogPath: data + ".log",
			Args: []string{"agent", "--name", name, "--bind", ip, "--data-dir", data,
				"--bootstrap-expect", fmt.Sprint(members), "--join", seed},
		})
		conn, err := client.Dial(net.JoinHostPort(ip, "7948"))
		if err != nil {
			return nil, err
		}
		s.conns = append(s.conns, conn)
	}
	return s, nil
}

func shoalIP(i int) string { return fmt.Sprintf("127.0.200.%d", i+2) }

func (s *shoalCluster) name() string           { return "shoal" }
func (s *shoalCluster) procList() []*proc.Proc { return s.procs }

func (s *shoalCluster) start() error {
	for _, p := range s.procs {
		if err := p.Start(); err != nil {
			return err
		}
	}
	return nil
}

// put writes one ConfigMap whose spec is val.
func (s *shoalCluster) put(ctx context.Context, member int, key string, val []byte) error {
	_, err := s.conns[member].Txn(ctx, &pb.TxnRequest{Ops: []*pb.Op{{
		Type: pb.Op_PUT,
		Object: &pb.Object{Kind: "ConfigMap", ApiVersion: "v1", Namespace: "default",
			Name: "bench-" + key, Spec: val},
	}}})
	return err
}

func (s *shoalCluster) leader(ctx context.Context) (int, error) {
	var errs []error
	for i, c := range s.conns {
		if s.procs[i].Exited() {
			continue
		}
		st, err := c.RaftStatus(ctx, &pb.RaftStatusRequest{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for j := range members {
			if st.GetLeader() == fmt.Sprintf("n%d", j+1) && !s.procs[j].Exited() {
				return j, nil
			}
		}
		errs = append(errs, fmt.Errorf("n%d sees leader %q", i+1, st.GetLeader()))
	}
	return 0, fmt.Errorf("shoal leader: %w", errors.Join(errs...))
}

func (s *shoalCluster) kill(member int) error { return s.procs[member].Sigkill() }

// restart starts a killed agent again and dials it afresh, so that the
// client's reconnect backoff does not count as the cluster's recovery.
func (s *shoalCluster) restart(member int) error {
	if err := s.procs[member].Restart(); err != nil {
		return err
	}
	_ = s.conns[member].Close()
	conn, err := client.Dial(net.JoinHostPort(s.ips[member], "7948"))
	if err != nil {
		return err
	}
	s.conns[member] = conn
	return nil
}

// healthy is nil when every agent runs, sees the other two alive in
// gossip, agrees on one leader with three live voters, and takes a write.
func (s *shoalCluster) healthy(ctx context.Context) error {
	leader := ""
	for i, c := range s.conns {
		name := fmt.Sprintf("n%d", i+1)
		if s.procs[i].Exited() {
			return fmt.Errorf("%s has exited", name)
		}
		st, err := c.RaftStatus(ctx, &pb.RaftStatusRequest{})
		if err != nil {
			return fmt.Errorf("raft status of %s: %w", name, err)
		}
		if st.GetLeader() == "" || (leader != "" && st.GetLeader() != leader) {
			return fmt.Errorf("%s sees leader %q (others: %q)", name, st.GetLeader(), leader)
		}
		leader = st.GetLeader()
		voters := 0
		for _, v := range st.GetServers() {
			if v.GetAlive() && v.GetSuffrage() == "voter" {
				voters++
			}
		}
		if voters != members {
			return fmt.Errorf("%s sees %d live voters", name, voters)
		}
		m, err := c.Members(ctx, &pb.MembersRequest{})
		if err != nil {
			return fmt.Errorf("members of %s: %w", name, err)
		}
		alive := 0
		for _, mm := range m.GetMembers() {
			if mm.GetStatus() == "alive" {
				alive++
			}
		}
		if alive != members {
			return fmt.Errorf("%s sees %d alive members", name, alive)
		}
	}
	for i := range s.conns {
		if err := s.put(ctx, i, "health", payload(0)); err != nil {
			return fmt.Errorf("write through n%d: %w", i+1, err)
		}
	}
	return nil
}

func (s *shoalCluster) close() error {
	var errs []error
	for i, p := range s.procs {
		_ = s.conns[i].Close()
		errs = append(errs, p.Stop())
	}
	return errors.Join(errs...)
}
