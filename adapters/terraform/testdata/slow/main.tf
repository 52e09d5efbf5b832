# A module whose apply takes long: the first resource is made (it writes
# a marker, removed when destroyed), the second's creation waits until it
# is interrupted.
variable "placement" { type = any }
variable "tasks" { type = any }
variable "tags" { type = map(string) }
variable "agent" { type = object({ run = string, stop = string, report = string }) }

variable "marker" { type = string }

resource "terraform_data" "first" {
  input = var.marker
  provisioner "local-exec" {
    command = "echo made > '${self.input}'"
  }
  provisioner "local-exec" {
    when    = destroy
    command = "rm -f '${self.input}'"
  }
}

resource "terraform_data" "slow" {
  depends_on = [terraform_data.first]
  input      = "${var.marker}.pid"
  provisioner "local-exec" {
    # exec: the process the tool stops on interrupt is the one that waits.
    command = "echo $$ > '${self.input}'; exec sleep 600"
  }
}

output "addresses" { value = ["127.0.0.1"] }
output "rendezvous_port" { value = null }
