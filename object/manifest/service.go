package manifest

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// serviceFields are the Service fields Shoal implements: ClusterIP,
// headless, NodePort, LoadBalancer (external IPs) and ExternalName
// services, TCP and UDP ports, a map selector, ClientIP affinity.
var serviceFields = []string{
	"spec{}",
	"spec.type",
	"spec.selector",
	"spec.ports[].name",
	"spec.ports[].protocol",
	"spec.ports[].port",
	"spec.ports[].targetPort",
	"spec.ports[].nodePort",
	"spec.ports[].appProtocol",
	"spec.clusterIP",
	"spec.clusterIPs",
	"spec.externalIPs",
	"spec.externalName",
	"spec.sessionAffinity",
	"spec.sessionAffinityConfig.clientIP.timeoutSeconds",
	"spec.publishNotReadyAddresses",
}

// NodePortMin and NodePortMax bound the NodePort range, as Kubernetes'
// default --service-node-port-range.
const (
	NodePortMin = 30000
	NodePortMax = 32767
)

// maxAffinityTimeout is Kubernetes' upper bound for ClientIP affinity.
const maxAffinityTimeout = 86400

func validateService(obj metav1.Object) *fieldErr {
	s := obj.(*corev1.Service)
	spec := &s.Spec
	switch spec.Type {
	case "", corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName:
	default:
		return unsupportedValue("spec.type", string(spec.Type), "ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
	}
	for _, k := range sortedKeys(spec.Selector) {
		if err := labelPair("spec.selector", k, spec.Selector[k]); err != nil {
			return err
		}
	}
	if err := validateClusterIPs(spec); err != nil {
		return err
	}
	if err := validateLBAnnotations(s.Annotations); err != nil {
		return err
	}
	if spec.Type == corev1.ServiceTypeExternalName {
		if spec.ExternalName == "" {
			return errAt("spec.externalName", "required for type ExternalName")
		}
		if errs := content.IsDNS1123Subdomain(spec.ExternalName); len(errs) > 0 {
			return invalid("spec.externalName", spec.ExternalName, errs)
		}
		if spec.ClusterIP != "" && spec.ClusterIP != corev1.ClusterIPNone {
			return errAt("spec.clusterIP", "must be empty for type ExternalName")
		}
	} else if spec.ExternalName != "" {
		return errAt("spec.externalName", "only for type ExternalName")
	}
	headless := spec.ClusterIP == corev1.ClusterIPNone
	if headless && (spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer) {
		return errAt("spec.clusterIP", fmt.Sprintf(`"None": not allowed for type %s`, spec.Type))
	}
	if len(spec.Ports) == 0 && !headless && spec.Type != corev1.ServiceTypeExternalName {
		return errAt("spec.ports", "required: at least one port")
	}
	if err := validateServicePorts(spec); err != nil {
		return err
	}
	for i, ip := range spec.ExternalIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return errAt("spec.externalIPs["+strconv.Itoa(i)+"]", fmt.Sprintf("%q: not an IP address", ip))
		}
	}
	switch spec.SessionAffinity {
	case "", corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP:
	default:
		return unsupportedValue("spec.sessionAffinity", string(spec.SessionAffinity), "None", "ClientIP")
	}
	if c := spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		const p = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
		if spec.SessionAffinity != corev1.ServiceAffinityClientIP {
			return errAt(p, `only with sessionAffinity "ClientIP"`)
		}
		if t := *c.ClientIP.TimeoutSeconds; t < 1 || t > maxAffinityTimeout {
			return errAt(p, fmt.Sprintf("%d: must be between 1 and %d", t, maxAffinityTimeout))
		}
	}
	return nil
}

// validateClusterIPs checks a requested ClusterIP ("" asks for one to be
// allocated, "None" makes the service headless).
func validateClusterIPs(spec *corev1.ServiceSpec) *fieldErr {
	if ip := spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		if _, err := netip.ParseAddr(ip); err != nil {
			return errAt("spec.clusterIP", fmt.Sprintf("%q: must be an IP address or \"None\"", ip))
		}
	}
	switch {
	case len(spec.ClusterIPs) == 0:
	case len(spec.ClusterIPs) > 1:
		return errAt("spec.clusterIPs", "dual-stack services are not supported: at most one address")
	case spec.ClusterIPs[0] != spec.ClusterIP:
		return errAt("spec.clusterIPs[0]", fmt.Sprintf("%q: must equal spec.clusterIP %q", spec.ClusterIPs[0], spec.ClusterIP))
	}
	return nil
}

func validateServicePorts(spec *corev1.ServiceSpec) *fieldErr {
	type protoPort struct {
		proto corev1.Protocol
		port  int32
	}
	names := map[string]int{}
	ports := map[protoPort]int{}
	nodePorts := map[protoPort]int{}
	for i, sp := range spec.Ports {
		p := "spec.ports[" + strconv.Itoa(i) + "]"
		if len(spec.Ports) > 1 && sp.Name == "" {
			return errAt(p+".name", "required when the service has more than one port")
		}
		if sp.Name != "" {
			if errs := content.IsDNS1123Label(sp.Name); len(errs) > 0 {
				return invalid(p+".name", sp.Name, errs)
			}
			if j, dup := names[sp.Name]; dup {
				return errAt(p+".name", fmt.Sprintf("%q: duplicate of spec.ports[%d].name", sp.Name, j))
			}
			names[sp.Name] = i
		}
		proto := sp.Protocol
		switch proto {
		case "":
			proto = corev1.ProtocolTCP
		case corev1.ProtocolTCP, corev1.ProtocolUDP:
		default:
			return unsupportedValue(p+".protocol", string(proto), "TCP", "UDP")
		}
		if ap := sp.AppProtocol; ap != nil {
			if errs := validation.IsQualifiedName(*ap); len(errs) > 0 {
				return errAt(p+".appProtocol", fmt.Sprintf("%q: %s", *ap, strings.Join(errs, "; ")))
			}
		}
		if sp.Port < 1 || sp.Port > 65535 {
			return errAt(p+".port", fmt.Sprintf("%d: must be between 1 and 65535", sp.Port))
		}
		if j, dup := ports[protoPort{proto, sp.Port}]; dup {
			return errAt(p+".port", fmt.Sprintf("%d/%s: duplicate of spec.ports[%d]", sp.Port, proto, j))
		}
		ports[protoPort{proto, sp.Port}] = i
		if err := validateTargetPort(sp.TargetPort, p+".targetPort"); err != nil {
			return err
		}
		if sp.NodePort != 0 {
			if spec.Type != corev1.ServiceTypeNodePort && spec.Type != corev1.ServiceTypeLoadBalancer {
				return errAt(p+".nodePort", "only for type NodePort or LoadBalancer")
			}
			if sp.NodePort < NodePortMin || sp.NodePort > NodePortMax {
				return errAt(p+".nodePort", fmt.Sprintf("%d: must be between %d and %d", sp.NodePort, NodePortMin, NodePortMax))
			}
			if j, dup := nodePorts[protoPort{proto, sp.NodePort}]; dup {
				return errAt(p+".nodePort", fmt.Sprintf("%d/%s: duplicate of spec.ports[%d].nodePort", sp.NodePort, proto, j))
			}
			nodePorts[protoPort{proto, sp.NodePort}] = i
		}
	}
	return nil
}

// validateTargetPort checks a target port: a number in 1-65535 or the name
// of a container port. Zero (unset) means the service port.
func validateTargetPort(tp intstr.IntOrString, p string) *fieldErr {
	if tp.Type == intstr.String {
		if errs := validation.IsValidPortName(tp.StrVal); len(errs) > 0 {
			return invalid(p, tp.StrVal, errs)
		}
		return nil
	}
	if tp.IntVal != 0 && (tp.IntVal < 1 || tp.IntVal > 65535) {
		return errAt(p, fmt.Sprintf("%d: must be between 1 and 65535", tp.IntVal))
	}
	return nil
}
