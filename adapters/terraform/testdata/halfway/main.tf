# A module that fails half-way: the first resource is created (it writes
# a marker file, and removes it when destroyed), the second fails, so the
# apply stops with part of the infrastructure made.
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

resource "terraform_data" "second" {
  depends_on = [terraform_data.first]
  provisioner "local-exec" {
    command = "echo 'quota exceeded for instance family' >&2; exit 3"
  }
}

output "addresses" { value = ["127.0.0.1"] }
output "rendezvous_port" { value = null }
