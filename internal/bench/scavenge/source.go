package scavenge

import _ "embed"

// Source is scavenge.go, which the harness lays over the tree it builds
// wsdirect-node from (go build -overlay), older commits included.
//
//go:embed scavenge.go
var Source []byte

// Hook is the file the harness adds to the node's main package: it starts
// the control socket when EnvSocket is set.
const Hook = `package main

import "github.com/wsdirect/terraform-provider-wsdirect/internal/bench/scavenge"

func init() { scavenge.ListenFromEnv() }
`
