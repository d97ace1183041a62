// The Node 20 peer of the cold-start benchmark: what a Node function pays
// to be ready, the same clients a Sluice function builds (S3 and DynamoDB,
// from @aws-sdk v3), measured in-process from the first line to the clients
// built. Prints one JSON line: {"inProcessMs", "maxRssKiB"}; the harness
// times the whole process.
const started = performance.now();
const { S3Client } = await import('@aws-sdk/client-s3');
const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
const region = process.env.AWS_REGION ?? 'us-east-1';
const s3 = new S3Client({ region, forcePathStyle: true });
const dynamodb = new DynamoDBClient({ region });
const inProcessMs = performance.now() - started;
console.log(JSON.stringify({ inProcessMs, maxRssKiB: process.resourceUsage().maxRSS, clients: [typeof s3.send, typeof dynamodb.send] }));
