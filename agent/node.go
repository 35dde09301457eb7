package agent

import (
	"context"
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
	"github.com/shoal-dev/shoal/version"
)

// maxPodsPerNode is the allocatable pod count every node advertises.
const maxPodsPerNode = 110

// nodeFacts is the part of the Node object this agent owns: its labels from
// --labels and the well-known ones, capacity, addresses and node info.
// Conditions belong to the node lifecycle controller, spec.unschedulable and
// taints to the user.
func (a *Agent) nodeFacts() (map[string]string, corev1.NodeStatus) {
	labels := map[string]string{
		"kubernetes.io/hostname": a.cfg.Name,
		"kubernetes.io/os":       goruntime.GOOS,
		"kubernetes.io/arch":     goruntime.GOARCH,
	}
	for k, v := range a.cfg.Labels {
		labels[k] = v
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(a.cfg.CPUMillis, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(a.cfg.MemoryBytes, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(maxPodsPerNode, resource.DecimalSI),
	}
	st := corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.cfg.BindAddr},
			{Type: corev1.NodeHostName, Address: a.cfg.Name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               a.nodeID,
			KubeletVersion:          version.Version,
			OperatingSystem:         goruntime.GOOS,
			Architecture:            goruntime.GOARCH,
			ContainerRuntimeVersion: a.driver.Name() + "://" + version.Version,
		},
	}
	return labels, st
}

// registerNodeLoop creates or updates this agent's Node object until it
// matches the agent's facts, then watches for drift (a user deleting it).
func (a *Agent) registerNodeLoop(ctx context.Context) {
	a.every(ctx, 500*time.Millisecond, false, func(ctx context.Context) bool {
		if id, _ := a.node.Leader(); id == "" {
			return false
		}
		if err := a.registerNode(ctx); err != nil {
			a.log.Debug("register node", "err", err)
		}
		return false
	})
}

func (a *Agent) registerNode(ctx context.Context) error {
	labels, facts := a.nodeFacts()
	o, _ := a.node.Store().Get("Node", "", a.cfg.Name)
	node := &corev1.Node{}
	var expect uint64
	if o != nil {
		if err := object.Decode(o, node); err != nil {
			return err
		}
		expect = o.GetResourceVersion()
	} else {
		node.Name = a.cfg.Name
		node.Spec.PodCIDR = a.cfg.PodCIDR
		// Alive now: the lifecycle controller takes over from here.
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "ShoalAgentReady", Message: "agent registered", LastTransitionTime: metav1.Now()}}
	}
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	oldLabels, _ := json.Marshal(node.Labels)
	oldStatus, _ := json.Marshal(node.Status)
	for k, v := range labels {
		node.Labels[k] = v
	}
	conds := node.Status.Conditions
	node.Status = facts
	node.Status.Conditions = conds
	newLabels, _ := json.Marshal(node.Labels)
	newStatus, _ := json.Marshal(node.Status)
	obj, err := object.FromTyped("Node", node)
	if err != nil {
		return err
	}
	obj.ApiVersion = "v1"
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	switch {
	case o == nil:
		// A create carries its status.
		if _, err := a.api.Txn(cctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: obj, MustCreate: true}}}); err != nil {
			return fmt.Errorf("create node %s: %w", a.cfg.Name, err)
		}
	default:
		if string(oldLabels) != string(newLabels) {
			resp, err := a.api.Txn(cctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_PUT, Object: obj, ExpectRevision: expect}}})
			if err != nil {
				return fmt.Errorf("update node %s: %w", a.cfg.Name, err)
			}
			expect = resp.GetRevision()
		}
		if string(oldStatus) != string(newStatus) {
			if _, err := a.api.Txn(cctx, &pb.TxnRequest{Ops: []*pb.Op{{Type: pb.Op_STATUS, Object: obj, ExpectRevision: expect}}}); err != nil {
				return fmt.Errorf("update node %s status: %w", a.cfg.Name, err)
			}
		}
		return nil
	}
	if o == nil {
		// The create carried the status with the object.
		a.log.Info("registered node", "cpu", strconv.FormatInt(a.cfg.CPUMillis, 10)+"m", "memory", a.cfg.MemoryBytes)
	}
	return nil
}
