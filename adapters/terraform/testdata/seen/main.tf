# A module that writes the tasks it was given to the placement's
# directory, and runs one node like the built-in module.
variable "placement" { type = any }
variable "tasks" { type = any }
variable "tags" { type = map(string) }
variable "agent" { type = object({ run = string, stop = string, report = string }) }


resource "terraform_data" "node" {
  input = { stop = var.agent.stop }
  provisioner "local-exec" {
    environment = { TASKS = jsonencode(var.tasks), TAGS = jsonencode(var.tags), JOB = var.placement.job }
    command     = "printf '%s' \"$TASKS\" > '${var.agent.report}/tasks-seen.json'; printf '%s' \"$JOB\" > '${var.agent.report}/job-seen'; ${var.agent.run} 0 </dev/null >/dev/null 2>&1 &"
  }
  provisioner "local-exec" {
    when    = destroy
    command = "${self.input.stop} 0"
  }
}

output "addresses" { value = ["127.0.0.1"] }
output "rendezvous_port" { value = 4242 }
