// Package vrrpkitv1 is the Go side of the vrrpkit IPC contract (protobuf
// package vrrpkit.v1): the configuration snapshot the supervisor pushes to its
// children and the gRPC services they serve.
//
// Everything but this file and the tests is generated from
// proto/vrrpkit/v1/*.proto by `make proto`; edit the .proto files, not the
// .pb.go files.
package vrrpkitv1
