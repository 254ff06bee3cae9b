package localcloud

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/wsdirect/terraform-provider-wsdirect/internal/testing/probe"
)

// stubbornUserData runs a service that ignores SIGTERM (so a stop must wait TimeoutStopSec
// and SIGKILL it), records each start and writes into its StateDirectory=, and a service that fails at once with
// Restart=always (so it hits the start limit).
const stubbornUserData = `#cloud-config
write_files:
  - path: /usr/local/bin/stubborn
    permissions: '0755'
    content: |
      #!/bin/sh
      trap '' TERM
      echo started >> "$STARTS"
      touch "$STATE_DIRECTORY/seen"
      while :; do sleep 0.2; done
  - path: /etc/systemd/system/stubborn.service
    content: |
      [Unit]
      Description=ignores SIGTERM
      [Service]
      Environment=STARTS=starts
      StateDirectory=stubborn
      StateDirectoryMode=0700
      ExecStart=/usr/local/bin/stubborn
      TimeoutStopSec=1s
      [Install]
      WantedBy=multi-user.target
  - path: /usr/local/bin/fail
    permissions: '0755'
    content: |
      #!/bin/sh
      echo failing
      exit 3
  - path: /etc/systemd/system/flaky.service
    content: |
      [Service]
      ExecStart=/usr/local/bin/fail
      Restart=always
      RestartSec=50ms
runcmd:
  - [systemctl, daemon-reload]
  - [systemctl, enable, --now, stubborn]
  - [systemctl, start, flaky.service]
`

// TestStopStartTerminate: a stop sends SIGTERM, waits the unit's TimeoutStopSec and SIGKILLs
// what is left, then the instance is stopped (its auto public IP gone); a start runs the
// enabled units again without cloud-init; a failing unit stops restarting at the start limit;
// terminate and Close leave no process.
func TestStopStartTerminate(t *testing.T) {
	c := newTestCloud(t, nil)
	cl := ec2Client(c)
	id := launch(t, cl, 1, "subnet-00000001", stubbornUserData, "lc-life", "test")[0]
	probe.Until(t, 30*time.Second, "stubborn serving", func() error { return serving(c, id, "stubborn.service") })
	// StateDirectory= is made under the root's /var/lib with its mode, and named in
	// $STATE_DIRECTORY.
	state := rootPath(c.cfg.WorkDir, "/instances/"+id+"/root/var/lib/stubborn")
	probe.Until(t, 10*time.Second, "the state directory written", func() error {
		_, err := os.Stat(state + "/seen")
		return err
	})
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory %v %v, want mode 0700", fi.Mode(), err)
	}
	// $STARTS is relative: units run in their WorkingDirectory, the instance's root by default.
	st, _ := statusOf(c, id)
	firstPublic, firstPID := st.PublicIP, 0
	for _, u := range st.Units {
		if u.Name == "stubborn.service" {
			firstPID = u.PID
		}
	}

	probe.Until(t, 30*time.Second, "flaky at its start limit", func() error {
		s, _ := statusOf(c, id)
		for _, u := range s.Units {
			if u.Name == "flaky.service" {
				if u.ActiveState == unitFailed && u.Result == "start-limit-hit" {
					return nil
				}
				return fmt.Errorf("flaky %s (%s), restarts %d", u.ActiveState, u.Result, u.Restarts)
			}
		}
		return fmt.Errorf("no flaky unit: %+v", s.Units)
	})
	if s, _ := statusOf(c, id); s.Boot != bootDone {
		t.Fatalf("boot %q: %s", s.Boot, s.BootError)
	}

	ctx := context.Background()
	t0 := time.Now()
	if _, err := cl.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	probe.Until(t, 30*time.Second, "stopped", func() error {
		s, _ := statusOf(c, id)
		if s.State != "stopped" || s.Phase != phaseStopped {
			return fmt.Errorf("%s/%s", s.State, s.Phase)
		}
		return nil
	})
	if took := time.Since(t0); took < time.Second {
		t.Fatalf("stop took %v: the unit ignores SIGTERM and has TimeoutStopSec=1s", took)
	}
	if err := syscall.Kill(firstPID, 0); err == nil {
		t.Fatalf("process %d survived the stop", firstPID)
	}
	st, _ = statusOf(c, id)
	if st.PublicIP != "" || !containsLine(st.Units[len(st.Units)-1].Log, "State 'stop-sigterm' timed out. Killing.") {
		t.Fatalf("after stop: public %q, log:\n%s", st.PublicIP, strings.Join(st.Units[len(st.Units)-1].Log, "\n"))
	}

	if _, err := cl.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	probe.Until(t, 30*time.Second, "stubborn serving again", func() error { return serving(c, id, "stubborn.service") })
	// Active means started; the script's first line may still be on its way.
	probe.Until(t, 10*time.Second, "the second start recorded", func() error {
		starts, err := os.ReadFile(rootPath(c.cfg.WorkDir, "/instances/"+id+"/root/starts"))
		if err != nil || strings.Count(string(starts), "started") != 2 {
			return fmt.Errorf("starts file %q %v, want two starts", starts, err)
		}
		return nil
	})
	console, _ := os.ReadFile(rootPath(c.cfg.WorkDir, "/instances/"+id+"/console.log"))
	if n := strings.Count(string(console), "Cloud-init (local cloud) running modules"); n != 1 {
		t.Fatalf("cloud-init ran %d times, want once (first boot only)", n)
	}
	st, _ = statusOf(c, id)
	if st.PublicIP == "" || st.PublicIP == firstPublic {
		t.Fatalf("public IP after start %q (before %q): want a fresh one", st.PublicIP, firstPublic)
	}
	for _, u := range st.Units {
		if u.Name == "flaky.service" && u.ActiveState != unitInactive {
			t.Fatalf("flaky (never enabled) is %s after the restart", u.ActiveState)
		}
	}

	// After a crash, stop and start boot the instance afresh (as EC2 does on new hardware).
	if err := c.Kill(id, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	probe.Until(t, 30*time.Second, "stopped after the crash", func() error {
		if s, _ := statusOf(c, id); s.State != "stopped" {
			return fmt.Errorf("%s/%s", s.State, s.Phase)
		}
		return nil
	})
	if _, err := cl.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	probe.Until(t, 30*time.Second, "serving after the crash", func() error { return serving(c, id, "stubborn.service") })

	// A second instance stays running until Close, which stops it too.
	other := launch(t, cl, 1, "subnet-00000002", stubbornUserData, "lc-life", "test")[0]
	probe.Until(t, 30*time.Second, "other serving", func() error { return serving(c, other, "stubborn.service") })

	if _, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	probe.Until(t, 30*time.Second, "terminated", func() error {
		s, _ := statusOf(c, id)
		if s.Phase != phaseGone {
			return fmt.Errorf("%s/%s", s.State, s.Phase)
		}
		return nil
	})
	o, _ := statusOf(c, other)
	pids := o.PIDs()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Close(cctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d survived Close", pid)
		}
	}
	if _, err := os.Stat(rootPath(c.cfg.WorkDir, "/localcloud.json")); err == nil {
		t.Error("localcloud.json left after Close")
	}
}
