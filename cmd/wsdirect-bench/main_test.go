package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/bench/loadtest"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/clienttest"
)

func TestRunCommandJSON(t *testing.T) {
	fc := clienttest.New(t, 2)
	t.Setenv("WSDIRECT_PASSWORD", clienttest.Password)
	var out, errOut bytes.Buffer
	err := realMain(context.Background(), []string{"run", "-auth", fc.AuthURL(), "-user", clienttest.Username,
		"-conns", "10", "-rate", "0", "-source-ips", "127.0.0.2-127.0.0.3", "-json"}, nil, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	rep := loadtest.NewReport()
	if err := json.Unmarshal(out.Bytes(), rep); err != nil {
		t.Fatalf("output is not a JSON report: %v\n%s", err, out.String())
	}
	if rep.Connected != 10 || rep.Nodes["node-1"] != 5 || rep.Handshake.Count() != 10 {
		t.Errorf("report: connected %d nodes %v", rep.Connected, rep.Nodes)
	}
}

func TestRunCommandTableAndFailureExit(t *testing.T) {
	fc := clienttest.New(t, 1)
	var out, errOut bytes.Buffer
	err := realMain(context.Background(), []string{"run", "-auth", fc.AuthURL(), "-user", clienttest.Username,
		"-password", "wrong", "-conns", "3", "-rate", "0"}, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "3 of 3 connections failed") {
		t.Fatalf("err = %v, want failure", err)
	}
	for _, want := range []string{"connect rate", "auth_401", "3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"nope"},
		{"run", "-conns", "0"},
		{"run", "-source-ips", "10.0.0.9-10.0.0.1"},
		{"run", "-msg-size", "4", "-msg-rate", "1"},
		{"run", "extra"},
		{"demo", "-bin-dir", "/nonexistent"},
	} {
		var out, errOut bytes.Buffer
		if err := realMain(context.Background(), args, nil, &out, &errOut); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
