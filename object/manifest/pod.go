package manifest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// podSpecFields are the paths of a PodSpec at p that Shoal implements: what
// the kubelet duties, the scheduler and the runtime drivers act on.
func podSpecFields(p string) []string {
	c := p + ".containers[]."
	fs := []string{
		c + "name",
		c + "image",
		c + "imagePullPolicy",
		c + "command",
		c + "args",
		c + "workingDir",
		c + "env[].name",
		c + "env[].value",
		c + "env[].valueFrom.fieldRef.apiVersion",
		c + "env[].valueFrom.fieldRef.fieldPath",
		c + "env[].valueFrom.configMapKeyRef.name",
		c + "env[].valueFrom.configMapKeyRef.key",
		c + "env[].valueFrom.configMapKeyRef.optional",
		c + "ports[].name",
		c + "ports[].containerPort",
		c + "ports[].hostPort",
		c + "ports[].protocol",
		c + "ports[].hostIP",
		c + "resources.requests.cpu",
		c + "resources.requests.memory",
		c + "resources.limits.cpu",
		c + "resources.limits.memory",
		// Only the defaults are accepted (validateContainer), so that the
		// output of kubectl get -o yaml applies.
		c + "terminationMessagePath",
		c + "terminationMessagePolicy",
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
		pr := c + probe + "."
		fs = append(fs,
			pr+"exec.command",
			pr+"tcpSocket.port",
			pr+"tcpSocket.host",
			pr+"httpGet.path",
			pr+"httpGet.port",
			pr+"httpGet.host",
			pr+"httpGet.scheme",
			pr+"httpGet.httpHeaders[].name",
			pr+"httpGet.httpHeaders[].value",
			pr+"initialDelaySeconds",
			pr+"periodSeconds",
			pr+"timeoutSeconds",
			pr+"successThreshold",
			pr+"failureThreshold",
			pr+"terminationGracePeriodSeconds",
		)
	}
	fs = append(fs,
		p+".restartPolicy",
		p+".nodeSelector",
		p+".nodeName",
		p+".terminationGracePeriodSeconds",
		p+".tolerations[].key",
		p+".tolerations[].operator",
		p+".tolerations[].value",
		p+".tolerations[].effect",
		p+".tolerations[].tolerationSeconds",
		// The kubelet writes each pod's resolv.conf and service env.
		p+".dnsPolicy",
		p+".dnsConfig.nameservers",
		p+".dnsConfig.searches",
		p+".dnsConfig.options[].name",
		p+".dnsConfig.options[].value",
		p+".enableServiceLinks",
	)
	na := p + ".affinity.nodeAffinity."
	fs = append(fs, nodeSelectorTermFields(na+"requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[]")...)
	fs = append(fs, na+"preferredDuringSchedulingIgnoredDuringExecution[].weight")
	fs = append(fs, nodeSelectorTermFields(na+"preferredDuringSchedulingIgnoredDuringExecution[].preference")...)
	for _, pa := range []string{"podAffinity", "podAntiAffinity"} {
		a := p + ".affinity." + pa + "."
		fs = append(fs, podAffinityTermFields(a+"requiredDuringSchedulingIgnoredDuringExecution[]")...)
		fs = append(fs, a+"preferredDuringSchedulingIgnoredDuringExecution[].weight")
		fs = append(fs, podAffinityTermFields(a+"preferredDuringSchedulingIgnoredDuringExecution[].podAffinityTerm")...)
	}
	return fs
}

func nodeSelectorTermFields(p string) []string {
	return []string{
		p + ".matchExpressions[].key",
		p + ".matchExpressions[].operator",
		p + ".matchExpressions[].values",
	}
}

func podAffinityTermFields(p string) []string {
	return append(labelSelectorFields(p+".labelSelector"), p+".namespaces", p+".topologyKey")
}

func labelSelectorFields(p string) []string {
	return []string{
		p + ".matchLabels",
		p + ".matchExpressions[].key",
		p + ".matchExpressions[].operator",
		p + ".matchExpressions[].values",
	}
}

// podFieldPaths are the fieldRef paths an environment variable may read.
var podFieldPaths = []string{
	"metadata.name",
	"metadata.namespace",
	"metadata.uid",
	"spec.nodeName",
	"status.hostIP",
	"status.podIP",
}

// The defaults of the container fields Shoal accepts but does not vary.
const (
	defaultTerminationMessagePath   = "/dev/termination-log"
	defaultTerminationMessagePolicy = corev1.TerminationMessageReadFile
)

func validatePod(obj metav1.Object) *fieldErr {
	return validatePodSpec(&obj.(*corev1.Pod).Spec, "spec")
}

// validatePodSpec checks a pod spec at path p, as Kubernetes would for the
// fields Shoal supports.
func validatePodSpec(spec *corev1.PodSpec, p string) *fieldErr {
	if len(spec.Containers) == 0 {
		return errAt(p+".containers", "required: a pod needs at least one container")
	}
	names := map[string]int{}
	type hostPort struct {
		ip, protocol string
		port         int32
	}
	hostPorts := map[hostPort]string{}
	for i, c := range spec.Containers {
		cp := p + ".containers[" + strconv.Itoa(i) + "]"
		if err := validateContainer(&c, cp); err != nil {
			return err
		}
		if j, dup := names[c.Name]; dup {
			return errAt(cp+".name", fmt.Sprintf("%q: duplicate name; containers[%d] has it too", c.Name, j))
		}
		names[c.Name] = i
		for k, port := range c.Ports {
			if port.HostPort == 0 {
				continue
			}
			hp := hostPort{port.HostIP, string(protocolOf(port.Protocol)), port.HostPort}
			pp := cp + ".ports[" + strconv.Itoa(k) + "].hostPort"
			if first, dup := hostPorts[hp]; dup {
				return errAt(pp, fmt.Sprintf("%d/%s: duplicate host port; %s has it too", hp.port, hp.protocol, first))
			}
			hostPorts[hp] = pp
		}
	}
	switch spec.RestartPolicy {
	case "", corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	default:
		return unsupportedValue(p+".restartPolicy", string(spec.RestartPolicy), "Always", "OnFailure", "Never")
	}
	for _, k := range sortedKeys(spec.NodeSelector) {
		if err := labelPair(p+".nodeSelector", k, spec.NodeSelector[k]); err != nil {
			return err
		}
	}
	if spec.NodeName != "" {
		if errs := content.IsDNS1123Subdomain(spec.NodeName); len(errs) > 0 {
			return invalid(p+".nodeName", spec.NodeName, errs)
		}
	}
	if g := spec.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		return atLeast(p+".terminationGracePeriodSeconds", *g, 0)
	}
	if err := validateAffinity(spec.Affinity, p+".affinity"); err != nil {
		return err
	}
	for i, t := range spec.Tolerations {
		if err := validateToleration(t, p+".tolerations["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	return validateDNS(spec.DNSPolicy, spec.DNSConfig, p)
}

// The limits Kubernetes puts on a pod's dnsConfig.
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
)

// validateDNS checks dnsPolicy and dnsConfig of the pod spec at p, as
// Kubernetes does (an empty policy is ClusterFirst).
func validateDNS(policy corev1.DNSPolicy, dc *corev1.PodDNSConfig, p string) *fieldErr {
	switch policy {
	case "", corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet, corev1.DNSDefault, corev1.DNSNone:
	default:
		return unsupportedValue(p+".dnsPolicy", string(policy), "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
	}
	dp := p + ".dnsConfig"
	if policy == corev1.DNSNone {
		switch {
		case dc == nil:
			return errAt(dp, "required: must provide `dnsConfig` when `dnsPolicy` is None")
		case len(dc.Nameservers) == 0:
			return errAt(dp+".nameservers", "required: must provide at least one DNS nameserver when `dnsPolicy` is None")
		}
	}
	if dc == nil {
		return nil
	}
	if len(dc.Nameservers) > maxDNSNameservers {
		return errAt(dp+".nameservers", fmt.Sprintf("must not have more than %d nameservers", maxDNSNameservers))
	}
	for i, ns := range dc.Nameservers {
		if err := firstFieldErr(validation.IsValidIP(field.NewPath(dp+".nameservers").Index(i), ns)); err != nil {
			return err
		}
	}
	if len(dc.Searches) > maxDNSSearchPaths {
		return errAt(dp+".searches", fmt.Sprintf("must not have more than %d search paths", maxDNSSearchPaths))
	}
	if n := len(strings.Join(dc.Searches, " ")); n > maxDNSSearchListChars {
		return errAt(dp+".searches", fmt.Sprintf("must not have more than %d characters (including spaces) in the search list", maxDNSSearchListChars))
	}
	for i, s := range dc.Searches {
		if errs := content.IsDNS1123Subdomain(strings.TrimSuffix(s, ".")); len(errs) > 0 {
			return invalid(dp+".searches["+strconv.Itoa(i)+"]", s, errs)
		}
	}
	for i, o := range dc.Options {
		if o.Name == "" {
			return errAt(dp+".options["+strconv.Itoa(i)+"].name", "required")
		}
	}
	return nil
}

func validateContainer(c *corev1.Container, p string) *fieldErr {
	if c.Name == "" {
		return errAt(p+".name", "required")
	}
	if errs := content.IsDNS1123Label(c.Name); len(errs) > 0 {
		return invalid(p+".name", c.Name, errs)
	}
	switch {
	case c.Image == "":
		return errAt(p+".image", "required")
	case strings.TrimSpace(c.Image) != c.Image:
		return errAt(p+".image", fmt.Sprintf("%q: must not have leading or trailing whitespace", c.Image))
	}
	switch c.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return unsupportedValue(p+".imagePullPolicy", string(c.ImagePullPolicy), "Always", "IfNotPresent", "Never")
	}
	if c.TerminationMessagePath != "" && c.TerminationMessagePath != defaultTerminationMessagePath {
		return errAt(p+".terminationMessagePath", fmt.Sprintf("%q: not supported; only the default %q", c.TerminationMessagePath, defaultTerminationMessagePath))
	}
	if c.TerminationMessagePolicy != "" && c.TerminationMessagePolicy != defaultTerminationMessagePolicy {
		return errAt(p+".terminationMessagePolicy", fmt.Sprintf("%q: not supported; only the default %q", c.TerminationMessagePolicy, defaultTerminationMessagePolicy))
	}
	for i, e := range c.Env {
		if err := validateEnv(e, p+".env["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	portNames := map[string]bool{}
	for i, port := range c.Ports {
		pp := p + ".ports[" + strconv.Itoa(i) + "]"
		if err := validateContainerPort(port, pp); err != nil {
			return err
		}
		if port.Name != "" {
			if portNames[port.Name] {
				return errAt(pp+".name", fmt.Sprintf("%q: duplicate port name", port.Name))
			}
			portNames[port.Name] = true
		}
	}
	if err := validateResources(c.Resources, p+".resources"); err != nil {
		return err
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
		if err := validateProbe(pr.probe, pr.name, p+"."+pr.name, portNames); err != nil {
			return err
		}
	}
	return nil
}

func validateEnv(e corev1.EnvVar, p string) *fieldErr {
	if e.Name == "" {
		return errAt(p+".name", "required")
	}
	if errs := validation.IsRelaxedEnvVarName(e.Name); len(errs) > 0 {
		return invalid(p+".name", e.Name, errs)
	}
	src := e.ValueFrom
	if src == nil {
		return nil
	}
	if e.Value != "" {
		return errAt(p+".valueFrom", "may not be set when value is not empty")
	}
	switch {
	case src.FieldRef != nil && src.ConfigMapKeyRef != nil:
		return errAt(p+".valueFrom", "may set only one of fieldRef and configMapKeyRef")
	case src.FieldRef != nil:
		fp := p + ".valueFrom.fieldRef"
		if v := src.FieldRef.APIVersion; v != "" && v != "v1" {
			return unsupportedValue(fp+".apiVersion", v, "v1")
		}
		if src.FieldRef.FieldPath == "" {
			return errAt(fp+".fieldPath", "required")
		}
		if !slices.Contains(podFieldPaths, src.FieldRef.FieldPath) {
			return unsupportedValue(fp+".fieldPath", src.FieldRef.FieldPath, podFieldPaths...)
		}
	case src.ConfigMapKeyRef != nil:
		cp := p + ".valueFrom.configMapKeyRef"
		ref := src.ConfigMapKeyRef
		if ref.Name == "" {
			return errAt(cp+".name", "required")
		}
		if errs := content.IsDNS1123Subdomain(ref.Name); len(errs) > 0 {
			return invalid(cp+".name", ref.Name, errs)
		}
		if ref.Key == "" {
			return errAt(cp+".key", "required")
		}
		if errs := validation.IsConfigMapKey(ref.Key); len(errs) > 0 {
			return invalid(cp+".key", ref.Key, errs)
		}
	default:
		return errAt(p+".valueFrom", "must set fieldRef or configMapKeyRef")
	}
	return nil
}

func protocolOf(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func validateContainerPort(port corev1.ContainerPort, p string) *fieldErr {
	if port.Name != "" {
		if errs := validation.IsValidPortName(port.Name); len(errs) > 0 {
			return invalid(p+".name", port.Name, errs)
		}
	}
	if port.ContainerPort == 0 {
		return errAt(p+".containerPort", "required")
	}
	if errs := validation.IsValidPortNum(int(port.ContainerPort)); len(errs) > 0 {
		return errAt(p+".containerPort", fmt.Sprintf("%d: %s", port.ContainerPort, strings.Join(errs, "; ")))
	}
	if port.HostPort != 0 {
		if errs := validation.IsValidPortNum(int(port.HostPort)); len(errs) > 0 {
			return errAt(p+".hostPort", fmt.Sprintf("%d: %s", port.HostPort, strings.Join(errs, "; ")))
		}
	}
	switch port.Protocol {
	case "", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
	default:
		return unsupportedValue(p+".protocol", string(port.Protocol), "TCP", "UDP", "SCTP")
	}
	if port.HostIP != "" {
		if err := firstFieldErr(validation.IsValidIP(field.NewPath(p+".hostIP"), port.HostIP)); err != nil {
			return err
		}
	}
	return nil
}

// supportedResources are the resource names Shoal schedules and limits. The
// field tree refuses the others before validation.
var supportedResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}

func validateResources(r corev1.ResourceRequirements, p string) *fieldErr {
	for _, list := range []struct {
		name string
		rl   corev1.ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for _, name := range supportedResources {
			if q, ok := list.rl[name]; ok && q.Sign() < 0 {
				return errAt(p+"."+list.name+"."+string(name), fmt.Sprintf("%q: must be greater than or equal to 0", q.String()))
			}
		}
	}
	for _, name := range supportedResources {
		req, ok1 := r.Requests[name]
		lim, ok2 := r.Limits[name]
		if ok1 && ok2 && req.Cmp(lim) > 0 {
			return errAt(p+".requests."+string(name), fmt.Sprintf("%q: must be less than or equal to the %s limit %q", req.String(), name, lim.String()))
		}
	}
	return nil
}

func validateProbe(pr *corev1.Probe, which, p string, portNames map[string]bool) *fieldErr {
	if pr == nil {
		return nil
	}
	handlers := 0
	for _, set := range []bool{pr.Exec != nil, pr.HTTPGet != nil, pr.TCPSocket != nil, pr.GRPC != nil} {
		if set {
			handlers++
		}
	}
	if handlers != 1 {
		return errAt(p, "must specify exactly one handler (exec, httpGet or tcpSocket)")
	}
	switch {
	case pr.Exec != nil:
		if len(pr.Exec.Command) == 0 {
			return errAt(p+".exec.command", "required")
		}
	case pr.HTTPGet != nil:
		g := pr.HTTPGet
		if err := validateProbePort(g.Port, p+".httpGet.port", portNames); err != nil {
			return err
		}
		switch g.Scheme {
		case "", corev1.URISchemeHTTP, corev1.URISchemeHTTPS:
		default:
			return unsupportedValue(p+".httpGet.scheme", string(g.Scheme), "HTTP", "HTTPS")
		}
		for i, h := range g.HTTPHeaders {
			if errs := validation.IsHTTPHeaderName(h.Name); len(errs) > 0 {
				return invalid(p+".httpGet.httpHeaders["+strconv.Itoa(i)+"].name", h.Name, errs)
			}
		}
	case pr.TCPSocket != nil:
		if err := validateProbePort(pr.TCPSocket.Port, p+".tcpSocket.port", portNames); err != nil {
			return err
		}
	}
	for _, n := range []struct {
		name  string
		value int32
	}{
		{"initialDelaySeconds", pr.InitialDelaySeconds},
		{"timeoutSeconds", pr.TimeoutSeconds},
		{"successThreshold", pr.SuccessThreshold},
		{"failureThreshold", pr.FailureThreshold},
	} {
		if n.value < 0 {
			return atLeast(p+"."+n.name, n.value, 0)
		}
	}
	// 0 is unset and means the default period, 10 seconds.
	if pr.PeriodSeconds < 0 {
		return atLeast(p+".periodSeconds", pr.PeriodSeconds, 1)
	}
	if which != "readinessProbe" && pr.SuccessThreshold > 1 {
		return errAt(p+".successThreshold", fmt.Sprintf("%d: must be 1 for a %s", pr.SuccessThreshold, which))
	}
	if g := pr.TerminationGracePeriodSeconds; g != nil {
		if which == "readinessProbe" {
			return errAt(p+".terminationGracePeriodSeconds", "may not be set for a readinessProbe")
		}
		if *g < 1 {
			return atLeast(p+".terminationGracePeriodSeconds", *g, 1)
		}
	}
	return nil
}

// validateProbePort checks a probe's port: a number, or the name of one of
// the container's ports.
func validateProbePort(port intstr.IntOrString, p string, portNames map[string]bool) *fieldErr {
	if port.Type == intstr.String {
		if errs := validation.IsValidPortName(port.StrVal); len(errs) > 0 {
			return invalid(p, port.StrVal, errs)
		}
		if !portNames[port.StrVal] {
			return errAt(p, fmt.Sprintf("%q: the container has no port of this name", port.StrVal))
		}
		return nil
	}
	if errs := validation.IsValidPortNum(int(port.IntVal)); len(errs) > 0 {
		return errAt(p, fmt.Sprintf("%d: %s", port.IntVal, strings.Join(errs, "; ")))
	}
	return nil
}

func validateAffinity(a *corev1.Affinity, p string) *fieldErr {
	if a == nil {
		return nil
	}
	if na := a.NodeAffinity; na != nil {
		np := p + ".nodeAffinity"
		if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			rp := np + ".requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
			if len(req.NodeSelectorTerms) == 0 {
				return errAt(rp, "required: at least one term")
			}
			for i, term := range req.NodeSelectorTerms {
				if err := validateNodeSelectorTerm(term, rp+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		}
		for i, pref := range na.PreferredDuringSchedulingIgnoredDuringExecution {
			pp := np + ".preferredDuringSchedulingIgnoredDuringExecution[" + strconv.Itoa(i) + "]"
			if err := validateWeight(pref.Weight, pp+".weight"); err != nil {
				return err
			}
			if err := validateNodeSelectorTerm(pref.Preference, pp+".preference"); err != nil {
				return err
			}
		}
	}
	for _, pa := range []struct {
		name     string
		required []corev1.PodAffinityTerm
		weighted []corev1.WeightedPodAffinityTerm
	}{
		{"podAffinity", podAffinityRequired(a.PodAffinity), podAffinityPreferred(a.PodAffinity)},
		{"podAntiAffinity", podAntiAffinityRequired(a.PodAntiAffinity), podAntiAffinityPreferred(a.PodAntiAffinity)},
	} {
		pp := p + "." + pa.name
		for i, term := range pa.required {
			if err := validatePodAffinityTerm(term, pp+".requiredDuringSchedulingIgnoredDuringExecution["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		for i, w := range pa.weighted {
			wp := pp + ".preferredDuringSchedulingIgnoredDuringExecution[" + strconv.Itoa(i) + "]"
			if err := validateWeight(w.Weight, wp+".weight"); err != nil {
				return err
			}
			if err := validatePodAffinityTerm(w.PodAffinityTerm, wp+".podAffinityTerm"); err != nil {
				return err
			}
		}
	}
	return nil
}

func podAffinityRequired(a *corev1.PodAffinity) []corev1.PodAffinityTerm {
	if a == nil {
		return nil
	}
	return a.RequiredDuringSchedulingIgnoredDuringExecution
}

func podAffinityPreferred(a *corev1.PodAffinity) []corev1.WeightedPodAffinityTerm {
	if a == nil {
		return nil
	}
	return a.PreferredDuringSchedulingIgnoredDuringExecution
}

func podAntiAffinityRequired(a *corev1.PodAntiAffinity) []corev1.PodAffinityTerm {
	if a == nil {
		return nil
	}
	return a.RequiredDuringSchedulingIgnoredDuringExecution
}

func podAntiAffinityPreferred(a *corev1.PodAntiAffinity) []corev1.WeightedPodAffinityTerm {
	if a == nil {
		return nil
	}
	return a.PreferredDuringSchedulingIgnoredDuringExecution
}

func validateWeight(w int32, p string) *fieldErr {
	if w < 1 || w > 100 {
		return errAt(p, fmt.Sprintf("%d: must be between 1 and 100, inclusive", w))
	}
	return nil
}

func validateNodeSelectorTerm(term corev1.NodeSelectorTerm, p string) *fieldErr {
	for i, r := range term.MatchExpressions {
		rp := p + ".matchExpressions[" + strconv.Itoa(i) + "]"
		if r.Key == "" {
			return errAt(rp+".key", "required")
		}
		if errs := content.IsLabelKey(r.Key); len(errs) > 0 {
			return invalid(rp+".key", r.Key, errs)
		}
		switch r.Operator {
		case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
			if len(r.Values) == 0 {
				return errAt(rp+".values", "required when operator is In or NotIn")
			}
			for j, v := range r.Values {
				if errs := content.IsLabelValue(v); len(errs) > 0 {
					return invalid(rp+".values["+strconv.Itoa(j)+"]", v, errs)
				}
			}
		case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
			if len(r.Values) > 0 {
				return errAt(rp+".values", "must be empty when operator is Exists or DoesNotExist")
			}
		case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
			if len(r.Values) != 1 {
				return errAt(rp+".values", "must hold exactly one value when operator is Gt or Lt")
			}
			if _, err := strconv.ParseInt(r.Values[0], 10, 64); err != nil {
				return errAt(rp+".values[0]", fmt.Sprintf("%q: must be an integer when operator is Gt or Lt", r.Values[0]))
			}
		case "":
			return errAt(rp+".operator", "required")
		default:
			return unsupportedValue(rp+".operator", string(r.Operator), "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
		}
	}
	return nil
}

func validatePodAffinityTerm(term corev1.PodAffinityTerm, p string) *fieldErr {
	if err := validateLabelSelector(term.LabelSelector, p+".labelSelector"); err != nil {
		return err
	}
	for i, ns := range term.Namespaces {
		if errs := content.IsDNS1123Label(ns); len(errs) > 0 {
			return invalid(p+".namespaces["+strconv.Itoa(i)+"]", ns, errs)
		}
	}
	if term.TopologyKey == "" {
		return errAt(p+".topologyKey", "required")
	}
	if errs := content.IsLabelKey(term.TopologyKey); len(errs) > 0 {
		return invalid(p+".topologyKey", term.TopologyKey, errs)
	}
	return nil
}

func validateToleration(t corev1.Toleration, p string) *fieldErr {
	if t.Key != "" {
		if errs := content.IsLabelKey(t.Key); len(errs) > 0 {
			return invalid(p+".key", t.Key, errs)
		}
	}
	switch t.Operator {
	case corev1.TolerationOpExists:
		if t.Value != "" {
			return errAt(p+".value", "must be empty when operator is Exists")
		}
	case "", corev1.TolerationOpEqual:
		if t.Key == "" {
			return errAt(p+".operator", "must be Exists when key is empty")
		}
		if errs := content.IsLabelValue(t.Value); len(errs) > 0 {
			return invalid(p+".value", t.Value, errs)
		}
	default:
		return unsupportedValue(p+".operator", string(t.Operator), "Equal", "Exists")
	}
	switch t.Effect {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		return unsupportedValue(p+".effect", string(t.Effect), "NoSchedule", "PreferNoSchedule", "NoExecute")
	}
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		return errAt(p+".tolerationSeconds", "may only be set when effect is NoExecute")
	}
	return nil
}
