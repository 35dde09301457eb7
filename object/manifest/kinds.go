package manifest

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/shoal-dev/shoal/object"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// decoder is what package manifest knows about one kind beyond the registry
// entry in package object.
type decoder struct {
	// new returns the typed Kubernetes struct a document must decode into
	// strictly: fields it does not have are unknown fields.
	new func() metav1.Object
	// fields are the JSON paths Shoal implements. Fields the typed struct
	// has but this tree lacks are refused as "not supported".
	fields *fieldTree
	// name checks metadata.name; it returns what is wrong, if anything.
	name func(string) []string
	// pre checks the generic JSON before strict decoding, for values whose
	// typed decode errors carry no path and that checkValues does not
	// cover (base64). May be nil.
	pre func(doc map[string]any) *fieldErr
	// validate checks the decoded typed object beyond its metadata. May be
	// nil.
	validate func(obj metav1.Object) *fieldErr
}

// metaFields are the fields every kind accepts: identity, labels,
// annotations, owner references and resourceVersion (a compare-and-swap
// precondition).
var metaFields = []string{
	"apiVersion",
	"kind",
	"metadata.name",
	"metadata.namespace",
	"metadata.labels",
	"metadata.annotations",
	"metadata.resourceVersion",
	"metadata.ownerReferences[].apiVersion",
	"metadata.ownerReferences[].kind",
	"metadata.ownerReferences[].name",
	"metadata.ownerReferences[].uid",
	"metadata.ownerReferences[].controller",
}

// ignoredFields are server-owned fields that `shoal get -o yaml` prints.
// They are accepted and dropped so that its output applies again.
var ignoredFields = []string{
	"status",
	"metadata.uid",
	"metadata.creationTimestamp",
	"metadata.generation",
	"metadata.managedFields",
	"metadata.selfLink",
}

func kindFields(paths ...string) *fieldTree {
	return newFields(append(append([]string(nil), metaFields...), paths...)...)
}

// decoders holds one entry per kind in object's registry.
var decoders = map[string]decoder{
	"Namespace": {
		new: func() metav1.Object { return &corev1.Namespace{} },
		// spec only has finalizers, which Shoal does not run.
		fields: kindFields("spec{}"),
		name:   content.IsDNS1123Label,
	},
	"ConfigMap": {
		new:      func() metav1.Object { return &corev1.ConfigMap{} },
		fields:   kindFields("data", "binaryData", "immutable"),
		name:     content.IsDNS1123Subdomain,
		pre:      checkBinaryData,
		validate: validateConfigMap,
	},
	"Pod": {
		new:      func() metav1.Object { return &corev1.Pod{} },
		fields:   kindFields(podSpecFields("spec")...),
		name:     content.IsDNS1123Subdomain,
		validate: validatePod,
	},
	"ReplicaSet": {
		new:      func() metav1.Object { return &appsv1.ReplicaSet{} },
		fields:   kindFields(replicaSetFields...),
		name:     content.IsDNS1123Subdomain,
		validate: validateReplicaSet,
	},
	"Deployment": {
		new:      func() metav1.Object { return &appsv1.Deployment{} },
		fields:   kindFields(deploymentFields...),
		name:     content.IsDNS1123Subdomain,
		validate: validateDeployment,
	},
	"Service": {
		new:      func() metav1.Object { return &corev1.Service{} },
		fields:   kindFields(serviceFields...),
		name:     validation.IsDNS1035Label,
		validate: validateService,
	},
	"Node": {
		new:      func() metav1.Object { return &corev1.Node{} },
		fields:   kindFields(nodeFields...),
		name:     content.IsDNS1123Subdomain,
		validate: validateNode,
	},
	"Event": {
		new:      func() metav1.Object { return &corev1.Event{} },
		fields:   kindFields(eventFields...),
		name:     content.IsDNS1123Subdomain,
		validate: validateEvent,
	},
	"HorizontalPodAutoscaler": {
		new:      func() metav1.Object { return &autoscalingv2.HorizontalPodAutoscaler{} },
		fields:   kindFields(hpaFields...),
		name:     content.IsDNS1123Subdomain,
		validate: validateHPA,
	},
	object.PlacementGuardKind: {
		new:      func() metav1.Object { return &object.PlacementGuard{} },
		fields:   kindFields(nodeAllocationFields...),
		name:     content.IsDNS1123Subdomain,
		validate: validatePlacementGuard,
	},
}

func checkBinaryData(doc map[string]any) *fieldErr {
	bd, _ := doc["binaryData"].(map[string]any)
	for _, k := range sortedKeys(bd) {
		s, ok := bd[k].(string)
		if !ok {
			continue // the typed decoder reports the type
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return errAt("binaryData."+k, "must be base64: "+err.Error())
		}
	}
	return nil
}

func validateConfigMap(obj metav1.Object) *fieldErr {
	cm := obj.(*corev1.ConfigMap)
	size := 0
	for _, k := range sortedKeys(cm.Data) {
		if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
			return errAt("data."+k, "invalid key: "+strings.Join(errs, "; "))
		}
		size += len(cm.Data[k])
	}
	for _, k := range sortedKeys(cm.BinaryData) {
		if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
			return errAt("binaryData."+k, "invalid key: "+strings.Join(errs, "; "))
		}
		if _, dup := cm.Data[k]; dup {
			return errAt("binaryData."+k, fmt.Sprintf("key %q is also in data", k))
		}
		size += len(cm.BinaryData[k])
	}
	if size > corev1.MaxSecretSize {
		return errAt("data", fmt.Sprintf("too long: data and binaryData hold %d bytes, at most %d are allowed", size, corev1.MaxSecretSize))
	}
	return nil
}
