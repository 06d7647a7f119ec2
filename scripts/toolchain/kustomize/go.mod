module plinth.dev/toolchain/kustomize

go 1.24

// kustomize v5.6.0 is the kustomize built into kubectl v1.33; the modules both share are held
// at kubectl v1.33.9's versions, so that renders are byte for byte those of `kubectl kustomize`.
require (
	github.com/spf13/cobra v1.8.1
	golang.org/x/text v0.23.0
	google.golang.org/protobuf v1.36.5
	k8s.io/kube-openapi v0.0.0-20250318190949-c8a335a9a2ff
	sigs.k8s.io/kustomize/kustomize/v5 v5.6.0
)
