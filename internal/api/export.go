package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"

	"connectrpc.com/connect"
	"google.golang.org/grpc"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
)

// CatalogExportPath serves the catalog as DCAT-AP 3 JSON-LD
// (?format=dcat, the default) or as the resource catalog's CSV
// (?format=csv), with ?dept=D and ?retired=true as in
// `xhub catalog export`. Any caller with a hub credential may read it, as
// ListDatasets.
const CatalogExportPath = "/catalog/export"

// exportMethod is the method whose roles the export takes.
const exportMethod = "/xhub.v1.Catalog/ListDatasets"

func (s *Server) exportRoutes(mux *http.ServeMux, b *bridge) {
	mux.HandleFunc("GET "+CatalogExportPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		format := q.Get("format")
		if format == "" {
			format = "dcat"
		}
		ctx := grpc.NewContextWithServerTransportStream(grpcContext(r.Context(), r.Header), &headerStream{method: exportMethod})
		var out bytes.Buffer
		_, err := b.unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: exportMethod}, func(ctx context.Context, _ any) (any, error) {
			return nil, s.export(&out, format, q.Get("dept"), q.Get("retired"), r.Host)
		})
		if err != nil {
			ce := connectError(err)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(httpStatus(ce.Code()))
			fmt.Fprintf(w, "%s: %s\n", ce.Code(), ce.Message())
			return
		}
		if format == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="catalog.csv"`)
		} else {
			w.Header().Set("Content-Type", "application/ld+json")
		}
		_, _ = w.Write(out.Bytes())
	})
}

func (s *Server) export(w *bytes.Buffer, format, dept, retired, host string) error {
	if format != "dcat" && format != "csv" {
		return invalid("format", "%q is not dcat or csv", format)
	}
	q := catalog.Query{Limit: exchange.MaxPageSize}
	if dept != "" {
		d, err := catalog.ParseDeptID(dept)
		if err != nil {
			return toStatus(err)
		}
		q.Dept = d
	}
	if retired != "" {
		v, err := strconv.ParseBool(retired)
		if err != nil {
			return invalid("retired", "%q is not true or false", retired)
		}
		q.IncludeRetired = v
	}
	var all []catalog.Dataset
	for {
		ds, next, _ := s.cp.Datasets(q)
		all = append(all, ds...)
		if next == "" {
			break
		}
		q.After = next
	}
	names := map[catalog.DeptID]string{}
	var after catalog.DeptID
	for {
		ds, next, err := s.cp.Departments(after, exchange.MaxPageSize)
		if err != nil {
			return toStatus(err)
		}
		for _, d := range ds {
			names[d.ID] = d.Name
		}
		if next == "" {
			break
		}
		after = next
	}
	if format == "csv" {
		return catalog.CSV(w, all, names)
	}
	return catalog.DCAT(w, all, names, catalog.ExportOptions{Hub: host})
}

// httpStatus is the HTTP status of a Connect code, as the Connect
// protocol maps it.
func httpStatus(c connect.Code) int {
	switch c {
	case connect.CodeInvalidArgument, connect.CodeOutOfRange:
		return http.StatusBadRequest
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeAlreadyExists, connect.CodeAborted:
		return http.StatusConflict
	case connect.CodeFailedPrecondition:
		return http.StatusPreconditionFailed
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnimplemented:
		return http.StatusNotImplemented
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	case connect.CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
