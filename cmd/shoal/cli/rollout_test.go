package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shoal-dev/shoal/agent/controller/deployment"
	"github.com/shoal-dev/shoal/internal/waitfor"
	"github.com/shoal-dev/shoal/object"
	pb "github.com/shoal-dev/shoal/proto/shoalpb"
)

// fakeStore is an agent that keeps objects in memory: Get, List, Watch and
// single-PUT transactions with compare-and-swap, as the real store does.
type fakeStore struct {
	pb.UnimplementedShoalServer
	t         *testing.T
	mu        sync.Mutex
	rev       uint64
	objs      map[string]*pb.Object
	conflicts int // PUTs to refuse as if another writer got there first
	puts      int // PUTs that changed something
	watchers  []chan *pb.WatchEvent
}

func newFakeStore(t *testing.T, objs ...any) *fakeStore {
	f := &fakeStore{t: t, objs: map[string]*pb.Object{}}
	for _, v := range objs {
		var kind string
		switch v.(type) {
		case *appsv1.Deployment:
			kind = "Deployment"
		case *appsv1.ReplicaSet:
			kind = "ReplicaSet"
		}
		o, err := object.FromTyped(kind, v)
		if err != nil {
			t.Fatal(err)
		}
		f.rev++
		o.ResourceVersion, o.Generation = f.rev, max(o.Generation, 1)
		f.objs[object.KeyOf(o)] = o
	}
	return f
}

func (f *fakeStore) Get(_ context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objs[object.Key(req.GetKind(), req.GetNamespace(), req.GetName())]
	if o == nil {
		return nil, status.Errorf(codes.NotFound, "%ss %q not found", strings.ToLower(req.GetKind()), req.GetName())
	}
	return &pb.GetResponse{Object: proto.CloneOf(o), Revision: f.rev}, nil
}

func (f *fakeStore) List(_ context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &pb.ListResponse{Revision: f.rev}
	for _, o := range f.objs {
		if o.GetKind() == req.GetKind() && o.GetNamespace() == req.GetNamespace() {
			resp.Objects = append(resp.Objects, proto.CloneOf(o))
		}
	}
	return resp, nil
}

func (f *fakeStore) Txn(_ context.Context, req *pb.TxnRequest) (*pb.TxnResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(req.GetOps()) != 1 || req.GetOps()[0].GetType() != pb.Op_PUT {
		return nil, status.Error(codes.Unimplemented, "fake: one PUT only")
	}
	op := req.GetOps()[0]
	in := op.GetObject()
	key := object.KeyOf(in)
	cur := f.objs[key]
	if cur == nil {
		return nil, status.Error(codes.NotFound, "fake: not found")
	}
	if f.conflicts > 0 {
		f.conflicts--
		f.rev++
		cur.ResourceVersion = f.rev // another writer
	}
	if op.GetExpectRevision() != cur.GetResourceVersion() {
		return nil, status.Errorf(codes.Aborted, "%s: conflict", key)
	}
	if in.GetResourceVersion() != 0 || len(in.GetStatus()) != 0 {
		f.t.Errorf("PUT carries a resourceVersion or status: %v", in)
	}
	next := proto.CloneOf(cur)
	next.Labels, next.Annotations, next.OwnerReferences, next.Spec = in.GetLabels(), in.GetAnnotations(), in.GetOwnerReferences(), in.GetSpec()
	if proto.Equal(next, cur) {
		return &pb.TxnResponse{Revision: f.rev, Results: []*pb.OpResult{{Object: cur, Unchanged: true}}}, nil
	}
	if !bytes.Equal(cur.GetSpec(), in.GetSpec()) {
		next.Generation++
	}
	f.rev++
	next.ResourceVersion = f.rev
	f.objs[key] = next
	f.puts++
	f.notify(next)
	return &pb.TxnResponse{Revision: f.rev, Results: []*pb.OpResult{{Object: next}}}, nil
}

func (f *fakeStore) notify(o *pb.Object) {
	for _, w := range f.watchers {
		select {
		case w <- &pb.WatchEvent{Type: pb.WatchEvent_MODIFIED, Object: proto.CloneOf(o), Revision: o.GetResourceVersion()}:
		default:
			f.t.Errorf("fake: a watcher fell 100 events behind")
		}
	}
}

func (f *fakeStore) Watch(req *pb.WatchRequest, stream pb.Shoal_WatchServer) error {
	ch := make(chan *pb.WatchEvent, 100)
	f.mu.Lock()
	f.watchers = append(f.watchers, ch)
	f.mu.Unlock()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case ev := <-ch:
			if ev.GetObject().GetKind() != req.GetKind() {
				continue
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

// setStatus changes a stored Deployment's status, as the controller would.
func (f *fakeStore) setStatus(name string, change func(d *appsv1.Deployment)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objs[object.Key("Deployment", "default", name)]
	d := &appsv1.Deployment{}
	if err := object.Decode(o, d); err != nil {
		f.t.Fatal(err)
	}
	change(d)
	typed, err := object.FromTyped("Deployment", d)
	if err != nil {
		f.t.Fatal(err)
	}
	f.rev++
	o.Status, o.ResourceVersion = typed.GetStatus(), f.rev
	f.notify(o)
}

func (f *fakeStore) deployment(name string) *appsv1.Deployment {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &appsv1.Deployment{}
	if err := object.Decode(f.objs[object.Key("Deployment", "default", name)], d); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func podTemplate(image string, extraLabels ...string) corev1.PodTemplateSpec {
	l := map[string]string{"app": "web"}
	for i := 0; i+1 < len(extraLabels); i += 2 {
		l[extraLabels[i]] = extraLabels[i+1]
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: l},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "web", Image: image, Command: []string{"shoal-testapp", "serve"}},
			{Name: "side", Image: "side:1"},
		}},
	}
}

func testDeployment(image string, status appsv1.DeploymentStatus) *appsv1.Deployment {
	six := int32(6)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-web", Generation: 2,
			Annotations: map[string]string{deployment.RevisionAnnotation: "2", "team": "blue"}},
		Spec: appsv1.DeploymentSpec{Replicas: &six, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(image)},
		Status: status,
	}
}

func testSet(rev int, image, cause string) *appsv1.ReplicaSet {
	yes := true
	ann := map[string]string{deployment.RevisionAnnotation: fmt.Sprint(rev)}
	if cause != "" {
		ann[deployment.ChangeCauseAnnotation] = cause
	}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", rev), Namespace: "default", UID: "uid-rs", Annotations: ann,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "uid-web", Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(image, deployment.TemplateHashLabel, fmt.Sprintf("h%d", rev))},
	}
}

var doneStatus = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 6, UpdatedReplicas: 6, ReadyReplicas: 6, AvailableReplicas: 6}

// run runs the CLI against server and returns exit code, stdout, stderr.
func run(server string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(append(args, "--server", server), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestSetImage(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		conflicts int
		wantCode  int
		wantOut   string
		wantErr   string
		wantImage string // of container web afterwards
		wantCause string
		wantPuts  int
	}{
		{"sets the image and records the command line", []string{"set", "image", "deployment/web", "web=img:2"}, 0,
			0, "deployment.apps/web image updated\n", "", "img:2", "shoal set image deployment/web web=img:2", 1},
		{"two words, retried over conflicts", []string{"set", "image", "deployment", "web", "web=img:3"}, 3,
			0, "deployment.apps/web image updated\n", "", "img:3", "shoal set image deployment web web=img:3", 1},
		{"--record=false keeps the cause", []string{"set", "image", "deploy/web", "web=img:2", "--record=false"}, 0,
			0, "deployment.apps/web image updated\n", "", "img:2", "", 1},
		{"the same image: nothing written", []string{"set", "image", "deployment/web", "web=img:1"}, 0,
			0, "deployment.apps/web image unchanged\n", "", "img:1", "", 0},
		{"an unknown container: one error, nothing written", []string{"set", "image", "deployment/web", "web=img:2", "nope=img:2"}, 0,
			1, "", `error: set image: deployment "web" has no container named "nope" (its containers: web, side)` + "\n", "img:1", "", 0},
		{"not a pair", []string{"set", "image", "deployment/web", "web"}, 0,
			1, "", `error: set image: "web": want CONTAINER=IMAGE` + "\n", "img:1", "", 0},
		{"not a deployment", []string{"set", "image", "pod/web", "web=x"}, 0,
			1, "", "error: set image: pods have no rollouts (deployments do)\n", "img:1", "", 0},
		{"a missing deployment", []string{"set", "image", "deployment/nope", "web=x"}, 0,
			1, "", "error: deployments \"nope\" not found\n", "img:1", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeStore(t, testDeployment("img:1", doneStatus))
			f.conflicts = tt.conflicts
			before := f.deployment("web")
			code, out, errOut := run(serveFake(t, f), tt.args...)
			if code != tt.wantCode || out != tt.wantOut || errOut != tt.wantErr {
				t.Fatalf("exit %d, stdout %q, stderr %q\nwant %d, %q, %q", code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			d := f.deployment("web")
			if img := d.Spec.Template.Spec.Containers[0].Image; img != tt.wantImage || d.Spec.Template.Spec.Containers[1].Image != "side:1" {
				t.Errorf("images %s, %s; want %s, side:1", img, d.Spec.Template.Spec.Containers[1].Image, tt.wantImage)
			}
			if c := d.Annotations[deployment.ChangeCauseAnnotation]; c != tt.wantCause {
				t.Errorf("change-cause %q, want %q", c, tt.wantCause)
			}
			if f.puts != tt.wantPuts {
				t.Errorf("%d writes, want %d", f.puts, tt.wantPuts)
			}
			if tt.wantPuts == 0 && tt.conflicts == 0 && d.ResourceVersion != before.ResourceVersion {
				t.Errorf("resourceVersion %s, was %s: nothing should have been written", d.ResourceVersion, before.ResourceVersion)
			}
		})
	}
}

func TestRolloutHistoryAndUndo(t *testing.T) {
	objs := func(paused bool) []any {
		d := testDeployment("img:2", doneStatus)
		d.Spec.Paused = paused
		d.Annotations[deployment.ChangeCauseAnnotation] = "shoal set image deployment/web web=img:2"
		foreign := testSet(7, "img:7", "not ours")
		foreign.Name, foreign.OwnerReferences[0].UID = "other-7", "uid-other"
		return []any{d, testSet(1, "img:1", ""), testSet(2, "img:2", "shoal set image deployment/web web=img:2"), foreign}
	}
	tests := []struct {
		name      string
		paused    bool
		args      []string
		wantCode  int
		wantOut   []string // lines, fields joined by one space
		wantErr   string
		wantImage string
		wantCause string
	}{
		{"history", false, []string{"rollout", "history", "deployment/web"}, 0,
			[]string{"deployment.apps/web", "REVISION CHANGE-CAUSE", "1 <none>", "2 shoal set image deployment/web web=img:2"}, "", "img:2", "shoal set image deployment/web web=img:2"},
		{"history of one revision", false, []string{"rollout", "history", "deployment", "web", "--revision", "1"}, 0,
			[]string{"deployment.apps/web with revision #1", "Pod Template:", "Labels: app=web", "pod-template-hash=h1", "Containers:",
				"web:", "Image: img:1", "Command: shoal-testapp serve", "side:", "Image: side:1"}, "", "img:2", "shoal set image deployment/web web=img:2"},
		{"history of a missing revision", false, []string{"rollout", "history", "deployment/web", "--revision", "5"}, 1,
			nil, `error: rollout history: deployment "web" has no revision 5 (it has 1, 2)`, "img:2", "shoal set image deployment/web web=img:2"},
		{"undo to the previous revision, its cause with it", false, []string{"rollout", "undo", "deployment/web"}, 0,
			[]string{"deployment.apps/web rolled back"}, "", "img:1", ""},
		{"undo to a revision", false, []string{"rollout", "undo", "deployment/web", "--to-revision", "1"}, 0,
			[]string{"deployment.apps/web rolled back"}, "", "img:1", ""},
		{"undo to the current template", false, []string{"rollout", "undo", "deployment/web", "--to-revision", "2"}, 0,
			[]string{"deployment.apps/web skipped rollback (current template already matches revision 2)"}, "", "img:2", "shoal set image deployment/web web=img:2"},
		{"undo to a revision that is not there", false, []string{"rollout", "undo", "deployment/web", "--to-revision", "7"}, 1,
			nil, `error: rollout undo: deployment "web" has no revision 7 (it has 1, 2)`, "img:2", "shoal set image deployment/web web=img:2"},
		{"undo of a paused deployment", true, []string{"rollout", "undo", "deployment/web"}, 1,
			nil, `error: rollout undo: deployment "web" is paused; resume it first with 'shoal rollout resume deployment/web'`, "img:2", "shoal set image deployment/web web=img:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeStore(t, objs(tt.paused)...)
			code, out, errOut := run(serveFake(t, f), tt.args...)
			if code != tt.wantCode || strings.TrimSpace(errOut) != tt.wantErr {
				t.Fatalf("exit %d, stderr %q; want %d, %q", code, errOut, tt.wantCode, tt.wantErr)
			}
			if got := strings.Join(tableFields(out), "\n"); got != strings.Join(tt.wantOut, "\n") {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, strings.Join(tt.wantOut, "\n"))
			}
			d := f.deployment("web")
			if img := d.Spec.Template.Spec.Containers[0].Image; img != tt.wantImage {
				t.Errorf("image %s, want %s", img, tt.wantImage)
			}
			if _, ok := d.Spec.Template.Labels[deployment.TemplateHashLabel]; ok {
				t.Errorf("the template got the pod-template-hash label: %v", d.Spec.Template.Labels)
			}
			if c := d.Annotations[deployment.ChangeCauseAnnotation]; c != tt.wantCause {
				t.Errorf("change-cause %q, want %q", c, tt.wantCause)
			}
			if d.Annotations[deployment.RevisionAnnotation] != "2" {
				t.Errorf("annotations %v: the revision is the controller's", d.Annotations)
			}
		})
	}
}

func TestRolloutPauseResumeRestart(t *testing.T) {
	f := newFakeStore(t, testDeployment("img:1", doneStatus))
	server := serveFake(t, f)
	steps := []struct {
		args     []string
		wantCode int
		want     string // stdout or stderr
		paused   bool
	}{
		{[]string{"rollout", "pause", "deployment/web"}, 0, "deployment.apps/web paused\n", true},
		{[]string{"rollout", "pause", "deployment", "web"}, 1, "error: deployments.apps \"web\" is already paused\n", true},
		{[]string{"rollout", "restart", "deployment/web"}, 1, "error: rollout restart: deployment \"web\" is paused; resume it first with 'shoal rollout resume deployment/web'\n", true},
		{[]string{"rollout", "resume", "deployment/web"}, 0, "deployment.apps/web resumed\n", false},
		{[]string{"rollout", "resume", "deployment/web"}, 1, "error: deployments.apps \"web\" is not paused\n", false},
		{[]string{"rollout", "restart", "deployment/web"}, 0, "deployment.apps/web restarted\n", false},
		{[]string{"rollout", "status", "replicaset/web"}, 1, "error: rollout status: replicasets have no rollouts (deployments do)\n", false},
		{[]string{"rollout", "pause", "web"}, 1, "error: rollout pause: \"web\": want deployment/NAME or deployment NAME\n", false},
	}
	for _, s := range steps {
		code, out, errOut := run(server, s.args...)
		if code != s.wantCode || out+errOut != s.want {
			t.Fatalf("shoal %s: exit %d, output %q; want %d, %q", strings.Join(s.args, " "), code, out+errOut, s.wantCode, s.want)
		}
		if d := f.deployment("web"); d.Spec.Paused != s.paused {
			t.Fatalf("after shoal %s: paused %v, want %v", strings.Join(s.args, " "), d.Spec.Paused, s.paused)
		}
	}
	d := f.deployment("web")
	at, err := time.Parse(time.RFC3339, d.Spec.Template.Annotations[restartedAtAnnotation])
	if err != nil || time.Since(at) > time.Minute {
		t.Errorf("restartedAt %q: want the time of the restart (%v)", d.Spec.Template.Annotations[restartedAtAnnotation], err)
	}
	if c := d.Annotations[deployment.ChangeCauseAnnotation]; c != "shoal rollout restart deployment/web" {
		t.Errorf("change-cause %q", c)
	}
}

func TestRolloutState(t *testing.T) {
	d := func(gen int64, st appsv1.DeploymentStatus) *appsv1.Deployment {
		x := testDeployment("img:1", st)
		x.Generation = gen
		return x
	}
	timedOut := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
		Reason: deployment.ReasonTimedOut, Message: `ReplicaSet "web-2" has timed out progressing.`}
	tests := []struct {
		name     string
		d        *appsv1.Deployment
		want     string
		wantDone bool
		wantErr  string
	}{
		{"spec not observed", d(3, doneStatus), "Waiting for deployment spec update to be observed...", false, ""},
		{"updating", d(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 7, UpdatedReplicas: 2}),
			`Waiting for deployment "web" rollout to finish: 2 out of 6 new replicas have been updated...`, false, ""},
		{"old pods left", d(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 7, UpdatedReplicas: 6}),
			`Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...`, false, ""},
		{"not yet available", d(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 6, UpdatedReplicas: 6, AvailableReplicas: 3}),
			`Waiting for deployment "web" rollout to finish: 3 of 6 updated replicas are available...`, false, ""},
		{"done", d(2, doneStatus), `deployment "web" successfully rolled out`, true, ""},
		{"deadline", d(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Conditions: []appsv1.DeploymentCondition{timedOut}}), "", false,
			`deployment "web" exceeded its progress deadline (ProgressDeadlineExceeded: ReplicaSet "web-2" has timed out progressing.)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, done, err := rolloutState(tt.d)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if msg != tt.want || done != tt.wantDone || gotErr != tt.wantErr {
				t.Errorf("got %q, %v, %q; want %q, %v, %q", msg, done, gotErr, tt.want, tt.wantDone, tt.wantErr)
			}
		})
	}
}

func TestProgressBar(t *testing.T) {
	tests := []struct {
		name     string
		replicas int32
		st       appsv1.DeploymentStatus
		paused   bool
		want     string
	}{
		{"midway", 6, appsv1.DeploymentStatus{Replicas: 7, UpdatedReplicas: 4, ReadyReplicas: 6, AvailableReplicas: 5},
			false, "web [####..] 6 desired: 4 updated, 6 ready, 5 available, 3 old"},
		{"paused", 6, appsv1.DeploymentStatus{Replicas: 6, UpdatedReplicas: 5, ReadyReplicas: 3, AvailableReplicas: 2},
			true, "web [#####.] 6 desired: 5 updated, 3 ready, 2 available, 1 old (paused)"},
		{"scaled to 30 cells", 60, appsv1.DeploymentStatus{Replicas: 60, UpdatedReplicas: 20, ReadyReplicas: 30, AvailableReplicas: 20},
			false, "web [##########....................] 60 desired: 20 updated, 30 ready, 20 available, 40 old"},
		{"zero replicas", 0, appsv1.DeploymentStatus{}, false, "web [] 0 desired: 0 updated, 0 ready, 0 available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testDeployment("img:1", tt.st)
			d.Spec.Replicas, d.Spec.Paused = &tt.replicas, tt.paused
			if got := progressBar(d); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestRolloutStatus follows a rollout through a fake agent: plain lines on
// change only when stdout is not a terminal, then success; the progress
// deadline and --timeout end it with an error.
func TestRolloutStatus(t *testing.T) {
	progressing := appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 7, UpdatedReplicas: 1, ReadyReplicas: 6, AvailableReplicas: 6}
	t.Run("lines on change, then success", func(t *testing.T) {
		f := newFakeStore(t, testDeployment("img:2", progressing))
		server := serveFake(t, f)
		type result struct {
			code     int
			out, err string
		}
		res := make(chan result, 1)
		go func() {
			code, out, errOut := run(server, "rollout", "status", "deployment/web", "--timeout", "20s")
			res <- result{code, out, errOut}
		}()
		// Wait until the command watches, then move the rollout along; an
		// unchanged status in between prints nothing.
		waitfor.True(t, 10*time.Second, "rollout status watching", func() bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			return len(f.watchers) > 0
		})
		f.setStatus("web", func(d *appsv1.Deployment) { d.Status.ReadyReplicas = 7 })
		f.setStatus("web", func(d *appsv1.Deployment) {
			d.Status.UpdatedReplicas = 6
			d.Status.AvailableReplicas = 3
			d.Status.Replicas = 6
		})
		f.setStatus("web", func(d *appsv1.Deployment) { d.Status = doneStatus })
		r := <-res
		want := `Waiting for deployment "web" rollout to finish: 1 out of 6 new replicas have been updated...
Waiting for deployment "web" rollout to finish: 3 of 6 updated replicas are available...
deployment "web" successfully rolled out
`
		if r.code != 0 || r.out != want || r.err != "" {
			t.Fatalf("exit %d, stdout:\n%s\nstderr %q; want 0 and\n%s", r.code, r.out, r.err, want)
		}
	})
	t.Run("progress deadline", func(t *testing.T) {
		st := progressing
		st.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: deployment.ReasonTimedOut, Message: `ReplicaSet "web-2" has timed out progressing.`}}
		code, out, errOut := run(serveFake(t, newFakeStore(t, testDeployment("img:2", st))), "rollout", "status", "deployment/web")
		if code == 0 || out != "" || !strings.Contains(errOut, "exceeded its progress deadline (ProgressDeadlineExceeded") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		code, out, errOut := run(serveFake(t, newFakeStore(t, testDeployment("img:2", progressing))), "rollout", "status", "deployment/web", "--timeout", "300ms")
		want := `error: timed out after 300ms waiting for deployment "web" rollout to finish (last seen: 1 out of 6 new replicas have been updated)` + "\n"
		if code == 0 || errOut != want || !strings.HasPrefix(out, "Waiting") {
			t.Fatalf("exit %d, stdout %q, stderr %q; want stderr %q", code, out, errOut, want)
		}
	})
}

func TestDeploymentArg(t *testing.T) {
	tests := []struct {
		args     []string
		want     string // name and rest, or "error: ..." substring
		wantRest int
	}{
		{[]string{"deployment/web"}, "web", 0},
		{[]string{"deployment", "web", "a=b"}, "web", 1},
		{[]string{"deployments.apps/web", "a=b"}, "web", 1},
		{[]string{"deploy", "web"}, "web", 0},
		{[]string{"Deployment/web"}, "web", 0},
		{[]string{"rs/web"}, "error: verb: replicasets have no rollouts", 0},
		{[]string{"frob/web"}, `error: verb: unknown kind "frob"`, 0},
		{[]string{"deployment/"}, "is not a deployment name", 0},
		{[]string{"deployment"}, "want deployment/NAME or deployment NAME", 0},
		{nil, "want deployment/NAME", 0},
	}
	for _, tt := range tests {
		name, rest, err := deploymentArg("verb", tt.args)
		got := name
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.Contains(got, tt.want) || (err == nil && len(rest) != tt.wantRest) {
			t.Errorf("deploymentArg(%q) = %q, %q, %v; want %q", tt.args, name, rest, err, tt.want)
		}
	}
}

// TestStatusPrinter checks both outputs of rollout status: on a terminal
// one line redrawn in place and only when it changes, ended by the result
// on its own line; otherwise kubectl's lines, each printed once.
func TestStatusPrinter(t *testing.T) {
	steps := []appsv1.DeploymentStatus{
		{ObservedGeneration: 2, Replicas: 7, UpdatedReplicas: 1, ReadyReplicas: 6, AvailableReplicas: 6},
		{ObservedGeneration: 2, Replicas: 7, UpdatedReplicas: 1, ReadyReplicas: 6, AvailableReplicas: 6},
		{ObservedGeneration: 2, Replicas: 7, UpdatedReplicas: 1, ReadyReplicas: 7, AvailableReplicas: 6},
	}
	for _, tty := range []bool{true, false} {
		var buf bytes.Buffer
		p := &statusPrinter{w: &buf, tty: tty}
		for _, st := range steps {
			d := testDeployment("img:2", st)
			msg, _, _ := rolloutState(d)
			p.show(d, msg)
		}
		p.done(`deployment "web" successfully rolled out`)
		want := "\r\x1b[Kweb [#.....] 6 desired: 1 updated, 6 ready, 6 available, 6 old" +
			"\r\x1b[Kweb [#.....] 6 desired: 1 updated, 7 ready, 6 available, 6 old\n" +
			"deployment \"web\" successfully rolled out\n"
		if !tty {
			want = "Waiting for deployment \"web\" rollout to finish: 1 out of 6 new replicas have been updated...\n" +
				"deployment \"web\" successfully rolled out\n"
		}
		if buf.String() != want {
			t.Errorf("tty=%v: printed %q\nwant %q", tty, buf.String(), want)
		}
	}
}
