// Java consumer 3.9.1 (client.id CLIENT_ID, no group: assigns TOPIC-0 from the beginning)
// that reads as fast as it can for SECONDS seconds. At second REMOVE_AT (if >= 0) it removes
// the client id's consumer_byte_rate with the Admin client (alterClientQuotas). Prints:
// {"bytes_per_sec":[...],"throttle_max_before":ms,"throttle_avg_before":ms}
// where the throttle figures are the consumer's fetch-throttle-time-max/avg metrics read
// just before the removal (or at the end).
//
// usage: java -cp '.tools/jars/*' QuotaConsumer.java BOOTSTRAP TOPIC CLIENT_ID SECONDS REMOVE_AT PARTITION_FETCH_BYTES
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.quota.*;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class QuotaConsumer {
    static double metric(KafkaConsumer<?, ?> c, String name) {
        for (Map.Entry<MetricName, ? extends Metric> e : c.metrics().entrySet()) {
            if (e.getKey().name().equals(name) && e.getKey().group().equals("consumer-fetch-manager-metrics")) {
                Object v = e.getValue().metricValue();
                if (v instanceof Double && !((Double) v).isNaN()) return (Double) v;
            }
        }
        return -1;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], clientId = args[2];
        int seconds = Integer.parseInt(args[3]), removeAt = Integer.parseInt(args[4]);
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, args[5]);
        long[] perSec = new long[seconds];
        double tMax = -1, tAvg = -1;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long start = System.nanoTime();
            boolean removed = false;
            while (true) {
                int sec = (int) ((System.nanoTime() - start) / 1_000_000_000L);
                if (sec >= seconds) break;
                if (!removed && removeAt >= 0 && sec >= removeAt) {
                    tMax = metric(c, "fetch-throttle-time-max");
                    tAvg = metric(c, "fetch-throttle-time-avg");
                    Properties ap = new Properties();
                    ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                    try (Admin admin = Admin.create(ap)) {
                        ClientQuotaEntity e = new ClientQuotaEntity(Map.of(ClientQuotaEntity.CLIENT_ID, clientId));
                        admin.alterClientQuotas(List.of(new ClientQuotaAlteration(e,
                            List.of(new ClientQuotaAlteration.Op("consumer_byte_rate", null))))).all().get();
                    }
                    removed = true;
                    continue;
                }
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
                    int s = (int) ((System.nanoTime() - start) / 1_000_000_000L);
                    if (s < seconds) perSec[s] += r.serializedValueSize();
                }
            }
            if (!removed) {
                tMax = metric(c, "fetch-throttle-time-max");
                tAvg = metric(c, "fetch-throttle-time-avg");
            }
        }
        StringBuilder sb = new StringBuilder("{\"bytes_per_sec\":[");
        for (int i = 0; i < seconds; i++) sb.append(i == 0 ? "" : ",").append(perSec[i]);
        System.out.println(sb.append("],\"throttle_max_before\":").append(tMax)
            .append(",\"throttle_avg_before\":").append(tAvg).append("}"));
    }
}
