package command

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
)

// The table names each client with SYNCED yes only when every type it
// watches is SYNCED, types by their short names, and a NACK's reason.
func TestWriteStatusTable(t *testing.T) {
	const cds, lds = "type.googleapis.com/envoy.config.cluster.v3.Cluster", "type.googleapis.com/envoy.config.listener.v3.Listener"
	at := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	ps := []xdsclient.ProxySync{
		{ID: "a.default", ClusterID: "Kubernetes", Types: []xdsclient.TypeSync{{TypeURL: cds, State: "SYNCED", LastUpdated: at}, {TypeURL: lds, State: "SYNCED"}}},
		{ID: "b.default", ClusterID: "Kubernetes", Types: []xdsclient.TypeSync{{TypeURL: cds, State: "STALE"}, {TypeURL: lds, State: "ERROR", Error: "bad route"}}},
		{ID: "c.default", ClusterID: "Kubernetes"},
	}
	rows := make([]clientStatus, 0, len(ps))
	for _, p := range ps {
		rows = append(rows, clientStatus{ProxySync: p, Synced: p.Synced()})
	}
	var b bytes.Buffer
	if err := writeStatusTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"CLIENT", "CLUSTER", "SYNCED", "TYPES"},
		{"a.default", "Kubernetes", "yes", "CDS=SYNCED", "LDS=SYNCED"},
		{"b.default", "Kubernetes", "no", "CDS=STALE", "LDS=ERROR", "(bad", "route)"},
		{"c.default", "Kubernetes", "no"},
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s\nwant %d lines", b.String(), len(want))
	}
	for i, l := range lines {
		if got := strings.Fields(l); strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d = %q, want fields %q", i, l, want[i])
		}
	}

	b.Reset()
	if err := printData(&b, formatJSON, rows[:1], nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"id": "a.default"`, `"synced": true`, `"state": "SYNCED"`, `"lastUpdated": "2026-12-06T05:00:00Z"`} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("json lacks %s:\n%s", s, b.String())
		}
	}

	b.Reset()
	if err := writeStatusTable(&b, nil); err != nil || !strings.Contains(b.String(), "no xDS client") {
		t.Fatalf("empty table %q, %v", b.String(), err)
	}
}
