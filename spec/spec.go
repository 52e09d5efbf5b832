// Package spec embeds the machine-readable parts of cinet's normative
// specification, so that the code validates against the very files the
// specification publishes.
package spec

import "embed"

// DescriptorV1 holds the JSON Schemas of the description language v1:
// descriptor/v1/common.json, job.json and offer.json.
//
//go:embed descriptor/v1/*.json
var DescriptorV1 embed.FS

// OpenAPI is the broker's HTTP API description, spec/api/openapi.json.
//
//go:embed api/openapi.json
var OpenAPI []byte
