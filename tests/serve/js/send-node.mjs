// @segment/analytics-node, unmodified, sending to the gateway given as the first argument.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushInterval: 100, maxEventsInBatch: 20 })
const failures = []
analytics.on('error', (err) => failures.push(String(err && err.code || err)))
analytics.identify({ userId: 'u1', traits: { email: 'jane@example.com', plan: 'pro' } })
analytics.track({ userId: 'u1', event: 'Product Viewed', properties: { product_id: 'p-1', price: 3 } })
analytics.track({ userId: 'u1', event: 'Coupon Entered', properties: { coupon: 'X' } })
analytics.page({ userId: 'u1', name: 'Home', properties: { path: '/' } })
await analytics.closeAndFlush({ timeout: 10000 })
process.stdout.write(JSON.stringify({ failures }) + '\n')
