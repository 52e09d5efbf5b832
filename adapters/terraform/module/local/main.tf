# The built-in module of cinet's terraform adapter: each node of a
# placement is a process on the machine that runs the tool, started by a
# local-exec provisioner and stopped by a destroy-time one. It needs no
# provider: terraform_data is the tool's own. Node K is reached at
# 127.0.0.(K+1). Modules for real infrastructure take the same variables
# and give the same outputs (spec/adapters.md §3.2).

variable "placement" {
  description = "The placement: id, job, nodes, class, region, zone, cpus, memory (bytes), accelerators and timeout (seconds) of each node."
  type = object({
    id           = string
    job          = string
    nodes        = number
    class        = string
    region       = string
    zone         = string
    cpus         = number
    memory       = number
    accelerators = number
    timeout      = number
  })
}

variable "tasks" {
  description = "The tasks each node runs in order, which the agent runs; a module for real infrastructure may read them, for instance to pick an image."
  type = list(object({
    name    = string
    command = list(string)
    env     = map(string)
  }))
}

variable "tags" {
  description = "Tags for whatever the module creates: cinet-job, cinet-placement, cinet-class."
  type        = map(string)
}

variable "agent" {
  description = "How a node starts and stops its agent: append the node's rank to run or stop. report is the placement's directory on the broker's machine."
  type = object({
    run    = string
    stop   = string
    report = string
  })
}

resource "terraform_data" "node" {
  count = var.placement.nodes
  input = {
    rank = count.index
    stop = var.agent.stop
  }

  provisioner "local-exec" {
    command = "${var.agent.run} ${count.index} </dev/null >/dev/null 2>&1 &"
  }

  provisioner "local-exec" {
    when    = destroy
    command = "${self.input.stop} ${self.input.rank}"
  }
}

output "addresses" {
  description = "Where each node is reached, in rank order."
  value       = [for n in terraform_data.node : "127.0.0.${n.input.rank + 1}"]
}

output "rendezvous_port" {
  description = "The port the nodes meet at; null lets the executor pick one free on node 0."
  value       = null
}
