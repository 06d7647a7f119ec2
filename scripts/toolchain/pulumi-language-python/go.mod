module plinth.dev/toolchain/pulumi-language-python

go 1.21

require github.com/pulumi/pulumi/sdk/v3 v3.79.0

replace golang.org/x/text => golang.org/x/text v0.3.6
