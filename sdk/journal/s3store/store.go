// Package s3store keeps runbook's run journals and run lock in an S3 bucket,
// so that a team shares one state: a run started on one machine is seen, and
// can be resumed, on another, and two runs against one target never proceed
// at the same time. It implements journal.Store; the CLI selects it with
// `--state s3://bucket/prefix`.
//
// Layout under the prefix:
//
//	lock.json                      the run lock, while a run holds it
//	runs/<run-id>/0000000001.json  one journal record per object, numbered by seq
//
// S3 objects are immutable, so a journal is a sequence of objects, each
// written once with If-None-Match: * (two writers can never both write one
// record number) and durable once PutObject returns. The lock is an object
// created with If-None-Match: *, carrying its holder and a lease that the
// holder renews with If-Match on the ETag it last wrote: a holder whose lock
// was removed or replaced notices at its next renewal, and from then on its
// journal writers refuse to write (so the engine stops before its next
// action). An expired lease is reported, never taken over: only Unlock
// removes a lock, and only with force while the lease is current.
package s3store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/spec"
)

// DefaultLease is how long a lock stays valid without being renewed.
const DefaultLease = 60 * time.Second

// Object names under the prefix.
const (
	LockObject = "lock.json"
	RunsPrefix = "runs/"
)

// Limits on what is read back: a lock record is a few hundred bytes; a
// journal record holds one event's outputs.
const (
	maxLockBytes   = 1 << 20
	maxRecordBytes = 64 << 20
)

// opTimeout bounds one journal append or lock write made without a caller's
// context (Append, renewals, Release), retries included.
const opTimeout = 2 * time.Minute

// Options configures a Store.
type Options struct {
	// Lease is how long the lock stays valid without renewal (default
	// DefaultLease, at least one second). A crashed holder's lock is
	// reported stale this long after its last renewal.
	Lease time.Duration
	// RenewEvery is how often the holder renews its lease (default Lease/3).
	RenewEvery time.Duration
	// Region and Profile select the AWS region and shared-config profile
	// for Open (default: the SDK's default chain, or the URL's ?region= and
	// ?profile=).
	Region  string
	Profile string
	// ReadConcurrency bounds parallel GETs when reading a journal (default 16).
	ReadConcurrency int
	// Warnf, if set, receives warnings the caller cannot otherwise see: a
	// lease renewal that failed (and will be retried), a lock that was lost.
	Warnf func(format string, args ...any)
	// UnlockCommand is the command messages suggest to remove the lock, as
	// the user would type it (journal.DefaultUnlockCommand if empty).
	UnlockCommand string
}

func (o Options) withDefaults() Options {
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Lease < time.Second {
		o.Lease = time.Second
	}
	if o.RenewEvery <= 0 || o.RenewEvery >= o.Lease {
		o.RenewEvery = o.Lease / 3
	}
	if o.ReadConcurrency <= 0 {
		o.ReadConcurrency = 16
	}
	if o.UnlockCommand == "" {
		o.UnlockCommand = journal.DefaultUnlockCommand
	}
	return o
}

// Store is a journal.Store in S3. It is safe for concurrent use.
type Store struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
	opts   Options

	mu   sync.Mutex
	held *lease // the lock this store holds: its writers are fenced by it
}

var _ journal.Store = (*Store)(nil)

// ErrBadURL is matched (errors.Is) by errors about the state URL itself.
var ErrBadURL = errors.New("invalid S3 state URL")

var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseURL splits s3://bucket/prefix?region=r&profile=p. The prefix may be
// empty; it is returned without leading or trailing slashes.
func ParseURL(raw string) (bucket, prefix string, query url.Values, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrBadURL, raw, fmt.Sprintf(format, args...))
	}
	u, perr := url.Parse(raw)
	if perr != nil {
		return "", "", nil, bad("%v", perr)
	}
	if u.Scheme != "s3" {
		return "", "", nil, bad("the scheme must be s3://")
	}
	if u.User != nil || u.Fragment != "" {
		return "", "", nil, bad("use s3://bucket/prefix (no user or fragment)")
	}
	bucket = u.Host
	if !bucketPattern.MatchString(bucket) || strings.Contains(bucket, "..") {
		return "", "", nil, bad("%q is not a valid bucket name (3-63 lowercase letters, digits, '.' and '-')", bucket)
	}
	prefix = strings.Trim(u.Path, "/")
	for _, part := range strings.Split(prefix, "/") {
		if prefix != "" && (part == "" || part == "." || part == "..") {
			return "", "", nil, bad("the prefix %q has an empty, '.' or '..' segment", prefix)
		}
	}
	query = u.Query()
	for k := range query {
		if k != "region" && k != "profile" {
			return "", "", nil, bad("unknown parameter %q (known: region, profile)", k)
		}
	}
	return bucket, prefix, query, nil
}

// Open parses an s3:// state URL, builds a client from the SDK's default
// configuration (credential chain, AWS_REGION, AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_S3; path-style addressing when an endpoint is set) and
// checks that the bucket is reachable.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	bucket, prefix, q, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if opts.Region == "" {
		opts.Region = q.Get("region")
	}
	if opts.Profile == "" {
		opts.Profile = q.Get("profile")
	}
	var lo []func(*config.LoadOptions) error
	if opts.Region != "" {
		lo = append(lo, config.WithRegion(opts.Region))
	}
	if opts.Profile != "" {
		lo = append(lo, config.WithSharedConfigProfile(opts.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("%s: loading AWS configuration: %w", rawURL, err)
	}
	// Its requests say they are the state's (the simulation checks them
	// against Permissions).
	cfg.APIOptions = append(cfg.APIOptions, awsmiddleware.AddUserAgentKeyValue(UserAgentKey, "s3"))
	if cfg.Region == "" {
		return nil, fmt.Errorf("%s: no AWS region: set AWS_REGION, or add ?region=NAME to the state URL", rawURL)
	}
	pathStyle := (cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "") || os.Getenv("AWS_ENDPOINT_URL_S3") != ""
	newClient := func(region string) *s3.Client {
		return s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.UsePathStyle = pathStyle
			o.Region = region
			// Journal objects are small and written without a checksum
			// by some S3-compatible stores: no log line per read.
			o.DisableLogOutputChecksumValidationSkipped = true
		})
	}
	s := New(newClient(cfg.Region), bucket, prefix, opts)
	region, err := s.checkBucket(ctx)
	if err != nil {
		return nil, err
	}
	if region != "" && region != cfg.Region {
		// The bucket lives elsewhere: talk to its region, as S3 asks.
		s.client = newClient(region)
		if _, err := s.checkBucket(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// UserAgentKey marks the state's requests: "runbook-state/s3".
const UserAgentKey = "runbook-state"

// Permissions are the IAM permissions the S3 state at rawURL needs: list
// the bucket (S3 authorizes HeadBucket and ListObjectsV2 with s3:ListBucket,
// Amazon S3 API Reference, "Required permissions for Amazon S3 API
// operations"), and read, write and delete the objects under the prefix
// (journals, locks). Resources are templates of spec.Permission.
func Permissions(rawURL string) ([]spec.Permission, error) {
	bucket, prefix, _, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	objects := "arn:{partition}:s3:::" + bucket + "/*"
	if p := strings.Trim(prefix, "/"); p != "" {
		objects = "arn:{partition}:s3:::" + bucket + "/" + p + "/*"
	}
	return []spec.Permission{
		{Actions: []string{"s3:ListBucket"}, Resources: []string{"arn:{partition}:s3:::" + bucket}},
		{Actions: []string{"s3:DeleteObject", "s3:GetObject", "s3:PutObject"}, Resources: []string{objects}},
	}, nil
}

// New returns the store under bucket/prefix using client.
func New(client *s3.Client, bucket, prefix string, opts Options) *Store {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{client: client, bucket: bucket, prefix: prefix, opts: opts.withDefaults()}
}

// Location is the store's URL.
func (s *Store) Location() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// Bucket and Prefix name where the store keeps its objects.
func (s *Store) Bucket() string { return s.bucket }
func (s *Store) Prefix() string { return s.prefix }

func (s *Store) lockKey() string            { return s.prefix + LockObject }
func (s *Store) runsPrefix() string         { return s.prefix + RunsPrefix }
func (s *Store) runPrefix(id string) string { return s.runsPrefix() + id + "/" }
func (s *Store) recordKey(id string, seq int64) string {
	return s.runPrefix(id) + fmt.Sprintf("%010d.json", seq)
}

// checkBucket makes sure the bucket exists and answers. It returns the
// bucket's region when S3 says it is in another one.
func (s *Store) checkBucket(ctx context.Context) (string, error) {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return "", nil
	}
	if r := bucketRegion(err); r != "" {
		return r, nil
	}
	switch httpStatus(err) {
	case http.StatusNotFound:
		return "", fmt.Errorf("%s: bucket %s does not exist (create it, or check the state URL)", s.Location(), s.bucket)
	case http.StatusForbidden:
		return "", fmt.Errorf("%s: access to bucket %s denied: the state needs s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on it: %w", s.Location(), s.bucket, err)
	}
	return "", fmt.Errorf("%s: reaching bucket %s: %w", s.Location(), s.bucket, err)
}

// bucketRegion is the region S3 names in a redirect (301) for a bucket in
// another region.
func bucketRegion(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.HTTPStatusCode() == http.StatusMovedPermanently {
		return re.Response.Header.Get("X-Amz-Bucket-Region")
	}
	return ""
}

// ---- S3 primitives ----

type object struct {
	body         []byte
	etag         string
	lastModified time.Time
	// serverNow is S3's clock when it answered (its Date header); zero if
	// unknown.
	serverNow time.Time
}

// get reads an object; it returns nil, nil when there is none.
func (s *Store) get(ctx context.Context, key string, limit int64) (*object, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if isNoSuchKey(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading %s: %w", s.url(key), err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.url(key), err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("reading %s: larger than %d bytes", s.url(key), limit)
	}
	o := &object{body: body, etag: aws.ToString(out.ETag), lastModified: aws.ToTime(out.LastModified)}
	if t, ok := awsmiddleware.GetServerTime(out.ResultMetadata); ok {
		o.serverNow = t
	}
	return o, nil
}

// putIfAbsent creates key; it fails with a precondition error if it exists.
func (s *Store) putIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), IfNoneMatch: aws.String("*"),
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// putIfMatch replaces key if its ETag is still etag.
func (s *Store) putIfMatch(ctx context.Context, key, etag string, body []byte) (string, error) {
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), IfMatch: aws.String(etag),
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// deleteIfMatch removes key if its ETag is still etag. Where S3 does not
// support conditional deletes (NotImplemented), the caller has just
// checked the content, and the delete is made without the condition.
func (s *Store) deleteIfMatch(ctx context.Context, key, etag string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), IfMatch: aws.String(etag)})
	if err != nil && apiCode(err) == "NotImplemented" {
		_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	}
	return err
}

// listKeys lists every key under prefix, in S3's (lexicographic) order.
func (s *Store) listKeys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", s.url(prefix), err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

func (s *Store) url(key string) string { return "s3://" + s.bucket + "/" + key }

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isPreconditionFailed: a conditional write lost (the object exists, or
// changed), or S3 saw a concurrent conditional write to the same key (409
// ConditionalRequestConflict): either way another writer got there.
func isPreconditionFailed(err error) bool {
	switch apiCode(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	st := httpStatus(err)
	return st == http.StatusPreconditionFailed || (st == http.StatusConflict && apiCode(err) == "")
}

func isNoSuchKey(err error) bool {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	case "NoSuchBucket":
		return false
	}
	return httpStatus(err) == http.StatusNotFound && apiCode(err) == ""
}

// ---- journals ----

// ConflictError says another writer wrote a record number of this journal:
// two processes are writing one run's journal (two resumes at once).
type ConflictError struct {
	RunID string
	Seq   int64
	Key   string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("record %d of run %s (%s) was written by another process: two processes are writing this run's journal; this one stops", e.Seq, e.RunID, e.Key)
}

// Create starts the journal of a new run. The run is visible once its
// first record is appended.
func (s *Store) Create(ctx context.Context, runID string) (journal.Writer, error) {
	if err := journal.ValidRunID(runID); err != nil {
		return nil, err
	}
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.runPrefix(runID)), MaxKeys: aws.Int32(1)})
	if err != nil {
		return nil, fmt.Errorf("creating journal: listing %s: %w", s.url(s.runPrefix(runID)), err)
	}
	if len(out.Contents) > 0 {
		return nil, fmt.Errorf("%w: %s", journal.ErrExists, s.url(s.runPrefix(runID)))
	}
	return &writer{s: s, runID: runID, next: 1}, nil
}

// Reopen continues an existing journal (resume). S3 writes are whole, so
// there is never a torn record to repair.
func (s *Store) Reopen(ctx context.Context, runID string) (journal.Writer, error) {
	j, err := s.Open(ctx, runID)
	if err != nil {
		return nil, err
	}
	return &writer{s: s, runID: runID, next: j.LastSeq() + 1, lastSum: j.LastSum(), legacy: j.Unchecked}, nil
}

var recordName = regexp.MustCompile(`^([0-9]{10})\.json$`)

// recordSeqs lists a run's record objects and returns their numbers in
// order. An object that is not a record is corruption.
func (s *Store) recordSeqs(ctx context.Context, runID string) ([]int64, error) {
	keys, err := s.listKeys(ctx, s.runPrefix(runID))
	if err != nil {
		return nil, err
	}
	seqs := make([]int64, 0, len(keys))
	for i, k := range keys {
		m := recordName.FindStringSubmatch(strings.TrimPrefix(k, s.runPrefix(runID)))
		if m == nil {
			return nil, &journal.CorruptError{RunID: runID, Line: i + 1, Msg: fmt.Sprintf("%s is not a journal record object", s.url(k))}
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		seqs = append(seqs, n)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// Open reads every record of a run. The objects are fetched in parallel
// and checked as journal.Parse checks a file: numbered from 1 without gaps,
// the first a run_started, all of this run; each object must hold exactly
// the record its name numbers.
func (s *Store) Open(ctx context.Context, runID string) (*journal.Journal, error) {
	if err := journal.ValidRunID(runID); err != nil {
		return nil, err
	}
	seqs, err := s.recordSeqs(ctx, runID)
	if err != nil {
		return nil, err
	}
	if len(seqs) == 0 {
		return nil, fmt.Errorf("%w: %s (no journal in %s)", journal.ErrNotFound, runID, s.Location())
	}
	bodies := make([][]byte, len(seqs))
	errs := make([]error, len(seqs))
	sem := make(chan struct{}, s.opts.ReadConcurrency)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, seq := range seqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			o, err := s.get(ctx, s.recordKey(runID, seq), maxRecordBytes)
			switch {
			case err != nil:
				errs[i] = err
				cancel()
			case o == nil:
				errs[i] = fmt.Errorf("reading journal of run %s: %s disappeared while being read", runID, s.url(s.recordKey(runID, seq)))
				cancel()
			default:
				bodies[i] = o.body
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var data bytes.Buffer
	for i, b := range bodies {
		if len(b) == 0 || b[len(b)-1] != '\n' || bytes.IndexByte(b, '\n') != len(b)-1 {
			return nil, &journal.CorruptError{RunID: runID, Line: i + 1, Msg: fmt.Sprintf("%s does not hold exactly one record line", s.url(s.recordKey(runID, seqs[i])))}
		}
		data.Write(b)
	}
	j, err := journal.Parse(runID, data.Bytes())
	if err != nil {
		return nil, err
	}
	for i, rec := range j.Records {
		if rec.Seq != seqs[i] {
			return nil, &journal.CorruptError{RunID: runID, Line: i + 1, Msg: fmt.Sprintf("%s holds record %d", s.url(s.recordKey(runID, seqs[i])), rec.Seq)}
		}
	}
	return j, nil
}

// List summarises every run, oldest first. It reads each run's first
// record and walks back from its last to the record that decides its
// status (usually the last), so listing costs a few requests per run. A
// run whose record numbers have a gap is listed as unreadable.
func (s *Store) List(ctx context.Context) ([]journal.RunSummary, error) {
	ids, err := s.runIDs(ctx)
	if err != nil {
		return nil, err
	}
	var holder *journal.Holder
	if st, err := s.readLock(ctx); err == nil && st != nil && st.parseErr == nil && !st.expired {
		holder = &st.holder
	}
	out := make([]journal.RunSummary, len(ids))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sum, err := s.summarize(ctx, id)
			if err != nil {
				out[i] = journal.RunSummary{RunID: id, Status: "unreadable", Err: err.Error()}
				return
			}
			if sum.Status == journal.StatusRunning && (holder == nil || holder.RunID != id) {
				sum.Status = journal.StatusIncomplete
			}
			out[i] = sum
		}()
	}
	wg.Wait()
	sort.SliceStable(out, func(i, k int) bool {
		if !out[i].Started.Equal(out[k].Started) {
			return out[i].Started.Before(out[k].Started)
		}
		return out[i].RunID < out[k].RunID
	})
	return out, nil
}

// runIDs lists the runs (the "directories" under runs/).
func (s *Store) runIDs(ctx context.Context) ([]string, error) {
	var ids []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(s.runsPrefix()), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing runs in %s: %w", s.Location(), err)
		}
		for _, cp := range page.CommonPrefixes {
			id := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), s.runsPrefix()), "/")
			if journal.ValidRunID(id) == nil {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

func (s *Store) summarize(ctx context.Context, runID string) (journal.RunSummary, error) {
	seqs, err := s.recordSeqs(ctx, runID)
	if err != nil {
		return journal.RunSummary{}, err
	}
	for i, seq := range seqs {
		if seq != int64(i+1) {
			return journal.RunSummary{}, &journal.CorruptError{RunID: runID, Line: i + 1, Msg: fmt.Sprintf("record number %d where %d was expected (records are missing)", seq, i+1)}
		}
	}
	if len(seqs) == 0 {
		return journal.RunSummary{}, fmt.Errorf("%w: %s", journal.ErrNotFound, runID)
	}
	read := func(seq int64) (journal.Record, error) {
		o, err := s.get(ctx, s.recordKey(runID, seq), maxRecordBytes)
		if err != nil {
			return journal.Record{}, err
		}
		if o == nil {
			return journal.Record{}, fmt.Errorf("%s disappeared while being read", s.url(s.recordKey(runID, seq)))
		}
		var rec journal.Record
		if err := json.Unmarshal(o.body, &rec); err != nil {
			return journal.Record{}, &journal.CorruptError{RunID: runID, Line: int(seq), Msg: "not a journal record: " + err.Error()}
		}
		return rec, nil
	}
	first, err := read(1)
	if err != nil {
		return journal.RunSummary{}, err
	}
	if first.Type != journal.RunStarted || first.RunID != runID {
		return journal.RunSummary{}, &journal.CorruptError{RunID: runID, Line: 1, Msg: "the first record is not this run's run_started"}
	}
	j := &journal.Journal{RunID: runID, Records: []journal.Record{first}}
	for seq := int64(len(seqs)); seq > 1; seq-- {
		rec, err := read(seq)
		if err != nil {
			return journal.RunSummary{}, err
		}
		if journal.DecidesRunStatus(rec.Type) {
			j.Records = append(j.Records, rec)
			break
		}
	}
	return j.Summarize(), nil
}

// writer appends one object per record.
type writer struct {
	s     *Store
	runID string

	mu     sync.Mutex
	next   int64
	err    error // sticky: another process wrote this journal
	closed bool
	// lastSum chains the next record to the last one (journal.Seal);
	// legacy: the journal predates checksums and is continued without.
	lastSum string
	legacy  bool
}

// Append writes rec as the object named by its number, only if no object
// has that name. It returns once S3 has stored it. When the store's lock
// was lost or its lease ran out, nothing is written: the run must stop.
func (w *writer) Append(rec journal.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	line, sum, err := journal.Seal(w.lastSum, rec, w.legacy)
	if err != nil {
		return err
	}
	switch {
	case w.closed:
		return errors.New("journal writer is closed")
	case w.err != nil:
		return w.err
	case rec.Seq != w.next:
		return fmt.Errorf("journal of run %s: record %d appended where %d was expected", w.runID, rec.Seq, w.next)
	case rec.RunID != w.runID:
		return fmt.Errorf("journal of run %s: refusing a record of run %q", w.runID, rec.RunID)
	}
	if err := w.s.fence(); err != nil {
		return fmt.Errorf("not writing record %d of run %s: %w", rec.Seq, w.runID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	key := w.s.recordKey(w.runID, rec.Seq)
	if _, err := w.s.putIfAbsent(ctx, key, line); err != nil {
		if !isPreconditionFailed(err) {
			return fmt.Errorf("writing %s: %w", w.s.url(key), err)
		}
		// The object exists. If it holds exactly this record, it is our
		// own write whose answer was lost and that the SDK retried.
		o, gerr := w.s.get(ctx, key, maxRecordBytes)
		if gerr != nil {
			return fmt.Errorf("writing %s: it exists, and reading it back failed: %w", w.s.url(key), gerr)
		}
		if o == nil || !bytes.Equal(o.body, line) {
			w.err = &ConflictError{RunID: w.runID, Seq: rec.Seq, Key: w.s.url(key)}
			return w.err
		}
	}
	w.next++
	w.lastSum = sum
	return nil
}

func (w *writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}
