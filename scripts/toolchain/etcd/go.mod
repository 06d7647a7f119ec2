module plinth.dev/toolchain/etcd

go 1.24

require go.etcd.io/etcd/server/v3 v3.5.24

replace go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v3.5.24

replace go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 v3.5.24

replace go.etcd.io/etcd/client/v2 => go.etcd.io/etcd/client/v2 v2.305.24

replace go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 v3.5.24

replace go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 v3.5.24

replace go.etcd.io/etcd/raft/v3 => go.etcd.io/etcd/raft/v3 v3.5.24
