// Validates rendered Kubernetes objects against Kubernetes' own OpenAPI schemas, with the
// per-kind models of kubernetes-models (and the Prometheus Operator's CRD schema for
// ServiceMonitor). Used by the chart test (tests/e2e/chart_helm_test.cc) on `helm template`'s
// output:
//
//   node tests/chart/validate.mjs rendered.yaml [more.yaml ...]
//
// Every document must be an object of a kind listed in `models`; an unknown kind is an error,
// never skipped. Prints one line per object validated ("<apiVersion> <kind> <name>"), and every
// violation on stderr; exits 1 when any object failed.
//
// These schemas check types, required fields and enumerations. Like Kubernetes' own OpenAPI
// schemas they do not refuse unknown fields, and object names are checked by the chart test.

import { readFileSync } from "node:fs";

import { parseAllDocuments } from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { Ingress } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

// "<apiVersion> <kind>" -> model class.
const models = new Map(
  [ConfigMap, Secret, Service, ServiceAccount, StatefulSet, Ingress, ServiceMonitor].map((m) => [
    `${m.apiVersion} ${m.kind}`,
    m,
  ]),
);

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs rendered.yaml [more.yaml ...]");
  process.exit(2);
}

let failures = 0;
const fail = (where, message) => {
  console.error(`${where}: ${message}`);
  failures++;
};

for (const file of files) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true });
  docs.forEach((doc, index) => {
    const where = `${file} document ${index + 1}`;
    if (doc.errors.length > 0) {
      fail(where, `not YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
      return;
    }
    const object = doc.toJS();
    if (object === null || object === undefined) {
      return;  // an empty document (a template that rendered nothing)
    }
    if (typeof object !== "object" || Array.isArray(object)) {
      fail(where, "not a Kubernetes object (a mapping with apiVersion and kind)");
      return;
    }
    const key = `${object.apiVersion} ${object.kind}`;
    const name = object.metadata?.name ?? "";
    const Model = models.get(key);
    if (!Model) {
      fail(
        `${where} (${name})`,
        `no schema for apiVersion ${object.apiVersion}, kind ${object.kind}: add its model to ` +
          `tests/chart/validate.mjs (known: ${[...models.keys()].join(", ")})`,
      );
      return;
    }
    try {
      new Model(object).validate();
      console.log(`${key} ${name}`);
    } catch (error) {
      fail(`${where} (${object.kind} ${name})`, error.message);
    }
  });
}
process.exit(failures === 0 ? 0 : 1);
