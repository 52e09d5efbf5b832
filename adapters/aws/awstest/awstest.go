// Package awstest is a fake of the AWS APIs the aws adapter calls, for
// tests: EC2's Query API and the Pricing API, answering as their
// documentation shows.
package awstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Now is the time the fake AWS answers as of: its spot prices are
// recent then.
var Now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// An instance type as DescribeInstanceTypes describes it (the EC2 Query
// API's XML, API version 2016-11-15).
var instanceTypes = map[string]string{
	"c7i.large": `<instanceType>c7i.large</instanceType><supportedUsageClasses><item>on-demand</item><item>spot</item></supportedUsageClasses>
		<processorInfo><supportedArchitectures><item>x86_64</item></supportedArchitectures><manufacturer>Intel</manufacturer></processorInfo>
		<vCpuInfo><defaultVCpus>2</defaultVCpus></vCpuInfo><memoryInfo><sizeInMiB>4096</sizeInMiB></memoryInfo>`,
	"g5.xlarge": `<instanceType>g5.xlarge</instanceType><supportedUsageClasses><item>on-demand</item><item>spot</item></supportedUsageClasses>
		<processorInfo><supportedArchitectures><item>x86_64</item></supportedArchitectures><manufacturer>AMD</manufacturer></processorInfo>
		<vCpuInfo><defaultVCpus>4</defaultVCpus></vCpuInfo><memoryInfo><sizeInMiB>16384</sizeInMiB></memoryInfo>
		<gpuInfo><gpus><item><name>A10G</name><manufacturer>NVIDIA</manufacturer><count>1</count><memoryInfo><sizeInMiB>24576</sizeInMiB></memoryInfo></item></gpus><totalGpuMemoryInMiB>24576</totalGpuMemoryInMiB></gpuInfo>`,
	"p5.48xlarge": `<instanceType>p5.48xlarge</instanceType><supportedUsageClasses><item>on-demand</item><item>spot</item></supportedUsageClasses>
		<processorInfo><supportedArchitectures><item>x86_64</item></supportedArchitectures><manufacturer>AMD</manufacturer></processorInfo>
		<vCpuInfo><defaultVCpus>192</defaultVCpus></vCpuInfo><memoryInfo><sizeInMiB>2097152</sizeInMiB></memoryInfo>
		<gpuInfo><gpus><item><name>H100</name><manufacturer>NVIDIA</manufacturer><count>8</count><memoryInfo><sizeInMiB>81920</sizeInMiB></memoryInfo></item></gpus><totalGpuMemoryInMiB>655360</totalGpuMemoryInMiB></gpuInfo>`,
	"p4d.24xlarge": `<instanceType>p4d.24xlarge</instanceType><supportedUsageClasses><item>on-demand</item></supportedUsageClasses>
		<processorInfo><supportedArchitectures><item>x86_64</item></supportedArchitectures><manufacturer>Intel</manufacturer></processorInfo>
		<vCpuInfo><defaultVCpus>96</defaultVCpus></vCpuInfo><memoryInfo><sizeInMiB>1179648</sizeInMiB></memoryInfo>
		<gpuInfo><gpus><item><name>A100</name><manufacturer>NVIDIA</manufacturer><count>8</count><memoryInfo><sizeInMiB>40960</sizeInMiB></memoryInfo></item></gpus><totalGpuMemoryInMiB>327680</totalGpuMemoryInMiB></gpuInfo>`,
	"inf2.xlarge": `<instanceType>inf2.xlarge</instanceType><supportedUsageClasses><item>on-demand</item><item>spot</item></supportedUsageClasses>
		<processorInfo><supportedArchitectures><item>x86_64</item></supportedArchitectures><manufacturer>AMD</manufacturer></processorInfo>
		<vCpuInfo><defaultVCpus>4</defaultVCpus></vCpuInfo><memoryInfo><sizeInMiB>16384</sizeInMiB></memoryInfo>
		<neuronInfo><neuronDevices><item><count>1</count><name>Inferentia2</name><coreInfo><count>2</count><version>2</version></coreInfo><memoryInfo><sizeInMiB>32768</sizeInMiB></memoryInfo></item></neuronDevices><totalNeuronDeviceMemoryInMiB>32768</totalNeuronDeviceMemoryInMiB></neuronInfo>`,
	"g4ad.xlarge": `<instanceType>g4ad.xlarge</instanceType><supportedUsageClasses><item>on-demand</item></supportedUsageClasses>
		<processorInfo><supportedArchitectures><item>x86_64</item></supportedArchitectures><manufacturer>AMD</manufacturer></processorInfo>
		<vCpuInfo><defaultVCpus>4</defaultVCpus></vCpuInfo><memoryInfo><sizeInMiB>16384</sizeInMiB></memoryInfo>
		<gpuInfo><gpus><item><name>Radeon Pro V520</name><manufacturer>AMD</manufacturer><count>1</count><memoryInfo><sizeInMiB>8192</sizeInMiB></memoryInfo></item></gpus></gpuInfo>`,
}

var onDemand = map[string]string{"c7i.large": "0.0893000000", "g5.xlarge": "1.0060000000", "p5.48xlarge": "98.3200000000", "p4d.24xlarge": "32.7726000000", "inf2.xlarge": "0.7582000000", "g4ad.xlarge": "0.3790000000"}

// spot is the spot price history: type, zone, price, how long ago.
var spot = []struct {
	typ, zone, price string
	ago              time.Duration
}{
	{"c7i.large", "us-east-1a", "0.031200", time.Hour},
	{"c7i.large", "us-east-1a", "0.029800", 10 * time.Minute}, // the latest counts
	{"c7i.large", "us-east-1b", "0.033100", 2 * time.Hour},
	{"g5.xlarge", "us-east-1a", "0.412300", time.Hour},
	{"p5.48xlarge", "us-east-1b", "38.015700", 3 * time.Hour},
	{"inf2.xlarge", "us-east-1a", "0.227400", time.Hour},
}

var zonesOf = map[string][]string{"c7i.large": {"us-east-1b", "us-east-1a"}, "g5.xlarge": {"us-east-1a"}, "p5.48xlarge": {"us-east-1b"},
	"p4d.24xlarge": {"us-east-1a"}, "inf2.xlarge": {"us-east-1a"}, "g4ad.xlarge": {"us-east-1a"}}

// AccessKey is the access key ID the fake expects requests signed with.
const AccessKey = "AKIDCINETTEST"

// Fake answers the EC2 Query API and the Pricing API (JSON 1.1) with the
// response shapes their documentation shows, for the instance types
// c7i.large, g5.xlarge, p5.48xlarge, p4d.24xlarge, inf2.xlarge and
// g4ad.xlarge in us-east-1; checks that each request is signed with SigV4
// for its service by AccessKey; and records the calls.
type Fake struct {
	T        testing.TB
	mu       sync.Mutex
	calls    []string // "ec2:DescribeInstanceTypes", "pricing:GetProducts"
	Throttle int      // answer this many EC2 calls RequestLimitExceeded first
	Deny     bool     // answer AuthFailure
	// Instances are what DescribeInstances knows.
	Instances []Instance
}

// An Instance is an EC2 instance a placement made: its ID, the placement
// and node its tags name, its state and why it is in it.
type Instance struct {
	ID, Placement string
	Node          int
	State, Reason string
}

// Calls lists the calls made so far, as "ec2:ACTION" or "pricing:ACTION".
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Serve starts a server for f, closed when the test ends, and returns
// its URL.
func (f *Fake) Serve() string {
	srv := httptest.NewServer(f)
	f.T.Cleanup(srv.Close)
	return srv.URL
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	service := "ec2"
	if r.Header.Get("X-Amz-Target") != "" {
		service = "pricing"
	}
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+AccessKey+"/") || !strings.Contains(auth, "/"+service+"/aws4_request") ||
		!strings.Contains(auth, "Signature=") || r.Header.Get("X-Amz-Date") == "" {
		f.T.Errorf("%s request not signed with SigV4 for %s: Authorization %q, X-Amz-Date %q", service, service, auth, r.Header.Get("X-Amz-Date"))
		http.Error(w, "unsigned", http.StatusForbidden)
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if service == "pricing" {
		f.pricing(w, r, body)
		return
	}
	form, _ := parseQuery(string(body))
	action := form["Action"][0]
	f.calls = append(f.calls, "ec2:"+action)
	if form["Version"][0] != "2016-11-15" {
		f.T.Errorf("EC2 API version %q", form["Version"])
	}
	if f.Deny {
		ec2Error(w, http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
		return
	}
	if f.Throttle > 0 {
		f.Throttle--
		ec2Error(w, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
		return
	}
	var items strings.Builder
	switch action {
	case "DescribeInstanceTypes":
		for k, v := range form {
			if strings.HasPrefix(k, "InstanceType.") {
				x, ok := instanceTypes[v[0]]
				if !ok {
					ec2Error(w, http.StatusBadRequest, "InvalidInstanceType", fmt.Sprintf("The following supplied instance types do not exist: [%s]", v[0]))
					return
				}
				items.WriteString("<item>" + x + "</item>")
			}
		}
		fmt.Fprintf(w, `<DescribeInstanceTypesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r1</requestId><instanceTypeSet>%s</instanceTypeSet></DescribeInstanceTypesResponse>`, items.String())
	case "DescribeInstanceTypeOfferings":
		if form["LocationType"][0] != "availability-zone" || form["Filter.1.Name"][0] != "instance-type" {
			f.T.Errorf("DescribeInstanceTypeOfferings %v", form)
		}
		for k, v := range form {
			if strings.HasPrefix(k, "Filter.1.Value.") {
				for _, z := range zonesOf[v[0]] {
					fmt.Fprintf(&items, "<item><instanceType>%s</instanceType><locationType>availability-zone</locationType><location>%s</location></item>", v[0], z)
				}
			}
		}
		fmt.Fprintf(w, `<DescribeInstanceTypeOfferingsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r2</requestId><instanceTypeOfferingSet>%s</instanceTypeOfferingSet></DescribeInstanceTypeOfferingsResponse>`, items.String())
	case "DescribeSpotPriceHistory":
		if form["ProductDescription.1"][0] != "Linux/UNIX" {
			f.T.Errorf("spot prices asked for %v", form["ProductDescription.1"])
		}
		for _, s := range spot {
			fmt.Fprintf(&items, "<item><instanceType>%s</instanceType><productDescription>Linux/UNIX</productDescription><spotPrice>%s</spotPrice><timestamp>%s</timestamp><availabilityZone>%s</availabilityZone></item>",
				s.typ, s.price, Now.Add(-s.ago).Format("2006-01-02T15:04:05.000Z"), s.zone)
		}
		fmt.Fprintf(w, `<DescribeSpotPriceHistoryResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r3</requestId><spotPriceHistorySet>%s</spotPriceHistorySet><nextToken></nextToken></DescribeSpotPriceHistoryResponse>`, items.String())
	case "DescribeInstances":
		if form["Filter.1.Name"][0] != "tag:cinet-placement" {
			f.T.Errorf("DescribeInstances %v", form)
		}
		for _, in := range f.Instances {
			if in.Placement != form["Filter.1.Value.1"][0] {
				continue
			}
			reason := ""
			if in.Reason != "" {
				reason = fmt.Sprintf("<stateReason><code>Server.SpotInstanceTermination</code><message>%s</message></stateReason>", in.Reason)
			}
			fmt.Fprintf(&items, `<item><reservationId>r-1</reservationId><instancesSet><item><instanceId>%s</instanceId><instanceState><code>0</code><name>%s</name></instanceState>%s<tagSet><item><key>cinet-placement</key><value>%s</value></item><item><key>cinet-node</key><value>%d</value></item></tagSet></item></instancesSet></item>`,
				in.ID, in.State, reason, in.Placement, in.Node)
		}
		fmt.Fprintf(w, `<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r5</requestId><reservationSet>%s</reservationSet></DescribeInstancesResponse>`, items.String())
	default:
		ec2Error(w, http.StatusBadRequest, "InvalidAction", "The action "+action+" is not valid for this web service.")
	}
}

func (f *Fake) pricing(w http.ResponseWriter, r *http.Request, body []byte) {
	f.calls = append(f.calls, "pricing:"+strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AWSPriceListService."))
	if r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		f.T.Errorf("pricing content type %q", r.Header.Get("Content-Type"))
	}
	var in struct {
		ServiceCode string
		Filters     []struct{ Field, Type, Value string }
	}
	if err := json.Unmarshal(body, &in); err != nil || in.ServiceCode != "AmazonEC2" {
		f.T.Errorf("GetProducts %s: %v", body, err)
	}
	fields := map[string]string{}
	for _, fl := range in.Filters {
		if fl.Type != "TERM_MATCH" {
			f.T.Errorf("filter type %q", fl.Type)
		}
		fields[fl.Field] = fl.Value
	}
	if fields["operatingSystem"] != "Linux" || fields["tenancy"] != "Shared" || fields["regionCode"] != "us-east-1" {
		f.T.Errorf("GetProducts filters %v", fields)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	var list []string
	if p, ok := onDemand[fields["instanceType"]]; ok {
		doc := fmt.Sprintf(`{"product":{"productFamily":"Compute Instance","attributes":{"instanceType":%q,"regionCode":"us-east-1","operatingSystem":"Linux"},"sku":"SKU1"},
			"serviceCode":"AmazonEC2","terms":{"OnDemand":{"SKU1.JRTCKXETXF":{"priceDimensions":{"SKU1.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs","pricePerUnit":{"USD":%q},"description":"per On Demand Linux instance hour"}},"sku":"SKU1"}}},"version":"20261101","publicationDate":"2026-11-01T00:00:00Z"}`,
			fields["instanceType"], p)
		list = append(list, doc)
	}
	out, _ := json.Marshal(map[string]any{"FormatVersion": "aws_v1", "PriceList": list})
	w.Write(out)
}

func ec2Error(w http.ResponseWriter, status int, code, msg string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>e1</RequestID></Response>`, code, msg)
}

func parseQuery(s string) (map[string][]string, error) {
	m := map[string][]string{}
	for _, kv := range strings.Split(s, "&") {
		k, v, _ := strings.Cut(kv, "=")
		k, _ = unescape(k)
		v, _ = unescape(v)
		m[k] = append(m[k], v)
	}
	return m, nil
}

func unescape(s string) (string, error) {
	s = strings.ReplaceAll(s, "+", " ")
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var c byte
			fmt.Sscanf(s[i+1:i+3], "%02X", &c)
			b.WriteByte(c)
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}
