module plinth.dev/toolchain/flux-source-controller

go 1.26.0

require github.com/fluxcd/source-controller v1.9.6

// The module's own replaces (a wrapper's are the only ones Go applies), less `./api`: the
// published api module of the same version is used. pkg/artifact v0.18.3, which v1.9.6 asks for,
// is refused by the module proxy here; v0.18.1 builds.
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20220411205349-bde1400a84be

replace github.com/fluxcd/pkg/artifact => github.com/fluxcd/pkg/artifact v0.18.1
