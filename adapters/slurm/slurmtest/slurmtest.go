// Package slurmtest starts a real Slurm cluster on this machine for
// tests: slurmdbd (accounting in MariaDB), slurmctld and one slurmd per
// node, every node a name of its own at its own loopback address
// (127.0.0.K+1), all in a temporary directory with ports the kernel says
// are free. .ci/install-slurm installs and prepares what it needs.
package slurmtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A Cluster is a running test cluster.
type Cluster struct {
	Dir       string // its configuration, state, logs
	Conf      string // slurm.conf: what SLURM_CONF names
	Name      string // the cluster's name
	Partition string
	Nodes     int
	daemons   []*exec.Cmd
	db        string
}

// Env is the environment Slurm's commands need to reach the cluster.
func (c *Cluster) Env() []string { return []string{"SLURM_CONF=" + c.Conf} }

// Unavailable says why a cluster cannot start here ("" when it can): a
// missing program, munge or MariaDB not answering.
func Unavailable() string {
	for _, p := range []string{"slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "sacctmgr", "scontrol", "munge", "mysql"} {
		if _, err := exec.LookPath(p); err != nil {
			return p + " is not installed (run .ci/install-slurm)"
		}
	}
	if err := exec.Command("sh", "-c", "munge -n | unmunge").Run(); err != nil {
		return "munged does not answer (run .ci/install-slurm)"
	}
	if err := exec.Command("mysqladmin", "ping").Run(); err != nil {
		return "MariaDB does not answer (run .ci/install-slurm)"
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts a cluster of the given nodes (each 2 CPUs, 4000 MB, two
// GPUs of GRES standing for devices it does not have) in a
// new directory under parent and waits until every node is idle. Stop
// it with Stop.
func Start(parent string, nodes int) (_ *Cluster, err error) {
	if why := Unavailable(); why != "" {
		return nil, errors.New(why)
	}
	dir, err := os.MkdirTemp(parent, "slurm-")
	if err != nil {
		return nil, err
	}
	var suffix [4]byte
	rand.Read(suffix[:])
	c := &Cluster{Dir: dir, Conf: filepath.Join(dir, "slurm.conf"), Name: "cinet" + hex.EncodeToString(suffix[:]), Partition: "cinet", Nodes: nodes}
	c.db = "cinet_slurm_" + c.Name
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	ports := make([]int, nodes+2)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"state", "spool", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	dbd := fmt.Sprintf(`AuthType=auth/munge
DbdHost=localhost
DbdPort=%d
SlurmUser=root
LogFile=%[2]s/log/slurmdbd.log
PidFile=%[2]s/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=cinet_slurm
StoragePass=cinet_slurm
StorageLoc=%s
`, ports[1], dir, c.db)
	if err := os.WriteFile(filepath.Join(dir, "slurmdbd.conf"), []byte(dbd), 0o600); err != nil {
		return nil, err
	}
	var nodeLines []string
	for k := range nodes {
		nodeLines = append(nodeLines, fmt.Sprintf("NodeName=n%d NodeHostname=localhost NodeAddr=127.0.0.%d Port=%d CPUs=2 RealMemory=4000 Gres=gpu:2 State=UNKNOWN", k, k+1, ports[k+2]))
	}
	conf := fmt.Sprintf(`ClusterName=%s
SlurmctldHost=localhost
SlurmctldPort=%d
SlurmUser=root
StateSaveLocation=%[3]s/state
SlurmdSpoolDir=%[3]s/spool/%%n
SlurmctldPidFile=%[3]s/slurmctld.pid
SlurmdPidFile=%[3]s/slurmd-%%n.pid
SlurmctldLogFile=%[3]s/log/slurmctld.log
SlurmdLogFile=%[3]s/log/slurmd-%%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=%d
ReturnToService=2
KillWait=5
SchedulerParameters=sched_interval=1
GresTypes=gpu
%s
PartitionName=cinet Nodes=n[0-%d] Default=YES MaxTime=INFINITE State=UP
`, c.Name, ports[0], dir, ports[1], strings.Join(nodeLines, "\n"), nodes-1)
	if err := os.WriteFile(c.Conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	// Two GPUs a node for the GRES requests and the contract's
	// accelerators: Slurm wants a device file for each, and has two
	// character devices every machine has (nothing here confines devices).
	if err := os.WriteFile(filepath.Join(dir, "gres.conf"), []byte(fmt.Sprintf("NodeName=n[0-%d] Name=gpu File=/dev/null,/dev/zero\n", nodes-1)), 0o644); err != nil {
		return nil, err
	}
	if err := c.daemon("slurmdbd", "-D"); err != nil {
		return nil, err
	}
	if err := waitPort(ports[1], 30*time.Second); err != nil {
		return nil, fmt.Errorf("slurmdbd did not listen: %w; see %s", err, filepath.Join(dir, "log", "slurmdbd.log"))
	}
	if out, err := c.Command(context.Background(), "sacctmgr", "-i", "add", "cluster", c.Name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sacctmgr add cluster: %v: %s", err, out)
	}
	if err := c.daemon("slurmctld", "-D"); err != nil {
		return nil, err
	}
	for k := range nodes {
		if err := c.daemon("slurmd", "-D", "-N", fmt.Sprintf("n%d", k)); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := c.Command(context.Background(), "sinfo", "-h", "-p", c.Partition, "-o", "%D %T").Output()
		if strings.TrimSpace(string(out)) == fmt.Sprintf("%d idle", nodes) {
			return c, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "log", "slurmctld.log"))
			if len(log) > 2000 {
				log = log[len(log)-2000:]
			}
			return nil, fmt.Errorf("the nodes are not idle after a minute (sinfo: %q); slurmctld's log ends:\n%s", out, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitPort(port int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Command is a Slurm command aimed at the cluster.
func (c *Cluster) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), c.Env()...)
	return cmd
}

func (c *Cluster) daemon(name string, args ...string) error {
	cmd := exec.Command("/usr/sbin/"+name, args...)
	cmd.Env = append(os.Environ(), c.Env()...)
	log, err := os.OpenFile(filepath.Join(c.Dir, "log", name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: Stop ends it and the job steps it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c.daemons = append(c.daemons, cmd)
	return nil
}

// Stop cancels every job, stops the daemons (the last started first),
// drops the accounting database and removes the directory.
func (c *Cluster) Stop() {
	if len(c.daemons) > 2 {
		c.Command(context.Background(), "scancel", "--full", "--partition", c.Partition).Run()
	}
	for i := len(c.daemons) - 1; i >= 0; i-- {
		d := c.daemons[i]
		syscall.Kill(-d.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { d.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-d.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	exec.Command("mysql", "-e", "DROP DATABASE IF EXISTS `"+c.db+"`").Run()
	os.RemoveAll(c.Dir)
}
