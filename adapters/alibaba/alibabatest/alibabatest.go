// Package alibabatest is a fake of the ECS API the alibaba adapter calls,
// for tests: RPC-style requests, answered with the JSON its documentation
// shows, each request's signature checked by the documented algorithm.
package alibabatest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The AccessKey pair the fake expects requests signed with.
const (
	AccessKeyID     = "LTAIcinettest"
	AccessKeySecret = "cinet-test-secret"
)

// Now is the time the fake answers as of: its spot prices are recent then.
var Now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// Instance types, as DescribeInstanceTypes describes them.
var instanceTypes = map[string]string{
	"ecs.g7.xlarge":           `{"InstanceTypeId":"ecs.g7.xlarge","InstanceTypeFamily":"ecs.g7","CpuCoreCount":4,"MemorySize":16,"CpuArchitecture":"X86","GPUAmount":0,"GPUSpec":"","GPUMemorySize":0}`,
	"ecs.gn7i-c8g1.2xlarge":   `{"InstanceTypeId":"ecs.gn7i-c8g1.2xlarge","InstanceTypeFamily":"ecs.gn7i","CpuCoreCount":8,"MemorySize":30,"CpuArchitecture":"X86","GPUAmount":1,"GPUSpec":"NVIDIA A10","GPUMemorySize":24}`,
	"ecs.gn7-c13g1.13xlarge":  `{"InstanceTypeId":"ecs.gn7-c13g1.13xlarge","InstanceTypeFamily":"ecs.gn7","CpuCoreCount":52,"MemorySize":378,"CpuArchitecture":"X86","GPUAmount":4,"GPUSpec":"NVIDIA A100","GPUMemorySize":160}`,
	"ecs.g8y.large":           `{"InstanceTypeId":"ecs.g8y.large","InstanceTypeFamily":"ecs.g8y","CpuCoreCount":2,"MemorySize":8,"CpuArchitecture":"ARM","GPUAmount":0}`,
	"ecs.vgn7i-vws-m4.xlarge": `{"InstanceTypeId":"ecs.vgn7i-vws-m4.xlarge","InstanceTypeFamily":"ecs.vgn7i-vws","CpuCoreCount":4,"MemorySize":30,"CpuArchitecture":"X86","GPUAmount":1,"GPUSpec":"NVIDIA A10 vGPU 1/6","GPUMemorySize":4}`,
}

// Zones selling each type, and pay-as-you-go hourly prices (CNY).
var (
	zonesOf  = map[string][]string{"ecs.g7.xlarge": {"cn-hangzhou-j", "cn-hangzhou-i"}, "ecs.gn7i-c8g1.2xlarge": {"cn-hangzhou-i"}, "ecs.gn7-c13g1.13xlarge": {"cn-hangzhou-i"}, "ecs.g8y.large": {"cn-hangzhou-j"}, "ecs.vgn7i-vws-m4.xlarge": {"cn-hangzhou-i"}}
	payGo    = map[string]string{"ecs.g7.xlarge": "0.917", "ecs.gn7i-c8g1.2xlarge": "12.27", "ecs.gn7-c13g1.13xlarge": "135.37", "ecs.g8y.large": "0.38", "ecs.vgn7i-vws-m4.xlarge": "3.64"}
	spotHist = []struct {
		typ, zone, price string
		ago              time.Duration
	}{
		{"ecs.g7.xlarge", "cn-hangzhou-i", "0.121", time.Hour},
		{"ecs.g7.xlarge", "cn-hangzhou-i", "0.118", 10 * time.Minute}, // the latest counts
		{"ecs.g7.xlarge", "cn-hangzhou-j", "0.13", 2 * time.Hour},
		{"ecs.gn7i-c8g1.2xlarge", "cn-hangzhou-i", "2.84", time.Hour},
		{"ecs.g8y.large", "cn-hangzhou-j", "0.05", time.Hour},
	}
)

// Fake answers DescribeInstanceTypes, DescribeAvailableResource,
// DescribePrice and DescribeSpotPriceHistory for region cn-hangzhou.
type Fake struct {
	T        testing.TB
	Throttle int  // answer this many calls Throttling.User first
	Deny     bool // answer InvalidAccessKeyId.NotFound
	// Instances are what DescribeInstances knows.
	Instances []Instance
	mu        sync.Mutex
	calls     []string
}

// An Instance is an ECS instance a placement made: its ID, the placement
// and node its tags name, and its status.
type Instance struct {
	ID, Placement string
	Node          int
	Status        string
}

// Calls lists the actions called so far.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Serve starts a server for f, closed when the test ends, and returns its
// host:port.
func (f *Fake) Serve() string {
	srv := httptest.NewServer(f)
	f.T.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// percentEncode is RFC 3986's, as the signature's documentation asks.
func percentEncode(s string) string {
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(s))
}

// signature computes a request's signature: HMAC-SHA1 with the secret and
// "&", over METHOD&%2F& and the sorted, encoded parameters.
func signature(method string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		pairs = append(pairs, percentEncode(k)+"="+percentEncode(params.Get(k)))
	}
	toSign := method + "&%2F&" + percentEncode(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(AccessKeySecret+"&"))
	mac.Write([]byte(toSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	params := r.URL.Query()
	form, _ := url.ParseQuery(string(body))
	for k, v := range form {
		params[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	fail := func(status int, code, msg string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"RequestId":"E1","HostId":"ecs.aliyuncs.com","Code":%q,"Message":%q,"Recommend":"https://api.aliyun.com/troubleshoot"}`, code, msg)
	}
	for _, k := range []string{"AccessKeyId", "Signature", "SignatureMethod", "SignatureNonce", "Timestamp", "Version", "Action"} {
		if params.Get(k) == "" {
			f.T.Errorf("request without %s: %v", k, params)
		}
	}
	if params.Get("SignatureMethod") != "HMAC-SHA1" || params.Get("Version") != "2014-05-26" || params.Get("RegionId") != "cn-hangzhou" {
		f.T.Errorf("request %v", params)
	}
	action := params.Get("Action")
	f.mu.Lock()
	f.calls = append(f.calls, action)
	throttle := f.Throttle > 0
	if throttle {
		f.Throttle--
	}
	f.mu.Unlock()
	if f.Deny || params.Get("AccessKeyId") != AccessKeyID {
		fail(http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
		return
	}
	if want := signature(r.Method, params); params.Get("Signature") != want {
		f.T.Errorf("%s: signature %q, the documented algorithm gives %q", action, params.Get("Signature"), want)
		fail(http.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
		return
	}
	if throttle {
		fail(http.StatusBadRequest, "Throttling.User", "Request was denied due to user flow control.")
		return
	}
	switch action {
	case "DescribeInstanceTypes":
		var items []string
		for k, v := range params {
			if strings.HasPrefix(k, "InstanceTypes.") {
				if x, ok := instanceTypes[v[0]]; ok {
					items = append(items, x)
				}
			}
		}
		sort.Strings(items)
		fmt.Fprintf(w, `{"RequestId":"R1","NextToken":"","InstanceTypes":{"InstanceType":[%s]}}`, strings.Join(items, ","))
	case "DescribeAvailableResource":
		if params.Get("DestinationResource") != "InstanceType" {
			f.T.Errorf("DescribeAvailableResource %v", params)
		}
		it := params.Get("InstanceType")
		var zs []string
		for _, z := range zonesOf[it] {
			if params.Get("SpotStrategy") != "" && it == "ecs.gn7-c13g1.13xlarge" {
				continue // not sold as spot
			}
			zs = append(zs, fmt.Sprintf(`{"ZoneId":%q,"Status":"Available","StatusCategory":"WithStock","RegionId":"cn-hangzhou","AvailableResources":{"AvailableResource":[{"Type":"InstanceType","SupportedResources":{"SupportedResource":[{"Value":%q,"Status":"Available","StatusCategory":"WithStock"}]}}]}}`, z, it))
		}
		fmt.Fprintf(w, `{"RequestId":"R2","AvailableZones":{"AvailableZone":[%s]}}`, strings.Join(zs, ","))
	case "DescribePrice":
		p, ok := payGo[params.Get("InstanceType")]
		if !ok {
			fail(http.StatusBadRequest, "InvalidInstanceType.ValueNotSupported", "The specified InstanceType does not exist or beyond the permitted range.")
			return
		}
		if params.Get("PriceUnit") != "Hour" {
			f.T.Errorf("DescribePrice %v", params)
		}
		fmt.Fprintf(w, `{"RequestId":"R3","PriceInfo":{"Price":{"OriginalPrice":%s,"DiscountPrice":0,"TradePrice":%s,"Currency":"CNY"},"Rules":{"Rule":[]}}}`, p, p)
	case "DescribeSpotPriceHistory":
		var items []string
		for _, s := range spotHist {
			if s.typ == params.Get("InstanceType") && s.zone == params.Get("ZoneId") {
				items = append(items, fmt.Sprintf(`{"ZoneId":%q,"InstanceType":%q,"IoOptimized":"optimized","Timestamp":%q,"NetworkType":"vpc","SpotPrice":%s,"OriginPrice":1}`,
					s.zone, s.typ, Now.Add(-s.ago).Format("2006-01-02T15:04:05Z"), s.price))
			}
		}
		fmt.Fprintf(w, `{"RequestId":"R4","Currency":"CNY","NextOffset":0,"SpotPrices":{"SpotPriceType":[%s]}}`, strings.Join(items, ","))
	case "DescribeInstances":
		if params.Get("Tag.1.Key") != "cinet-placement" {
			f.T.Errorf("DescribeInstances %v", params)
		}
		var items []string
		for _, in := range f.Instances {
			if in.Placement == params.Get("Tag.1.Value") {
				items = append(items, fmt.Sprintf(`{"InstanceId":%q,"Status":%q,"Tags":{"Tag":[{"TagKey":"cinet-placement","TagValue":%q},{"TagKey":"cinet-node","TagValue":"%d"}]}}`,
					in.ID, in.Status, in.Placement, in.Node))
			}
		}
		fmt.Fprintf(w, `{"RequestId":"R5","NextToken":"","TotalCount":%d,"Instances":{"Instance":[%s]}}`, len(items), strings.Join(items, ","))
	default:
		fail(http.StatusBadRequest, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
	}
}
