// Java Kafka client 3.9.1: one producer sends COUNT records to partition 0 of TOPIC, one every
// PAUSE_MS, over one connection, then reports the KIP-368 re-authentication metrics.
// Extra client properties come as key=value args. Prints one JSON line:
// {"acked":N,"reauth_ok":X,"reauth_failed":Y} or {"error":"..."}.
//
// usage: java -cp '.tools/jars/*' ReauthProduce.java BOOTSTRAP TOPIC COUNT PAUSE_MS [key=value...]
import java.nio.charset.StandardCharsets;
import java.util.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class ReauthProduce {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        int count = Integer.parseInt(args[2]);
        long pause = Long.parseLong(args[3]);
        Properties pp = new Properties();
        for (int i = 4; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            pp.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20000);
        try (Producer<byte[], byte[]> p = new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
            int acked = 0;
            for (int i = 0; i < count; i++) {
                p.send(new ProducerRecord<>(topic, 0, null, ("r-" + i).getBytes(StandardCharsets.UTF_8))).get();
                acked++;
                Thread.sleep(pause);
            }
            double ok = 0, failed = 0;
            for (Map.Entry<MetricName, ? extends Metric> e : p.metrics().entrySet()) {
                if (!e.getKey().group().equals("producer-metrics")) continue;
                Object v = e.getValue().metricValue();
                if (!(v instanceof Double)) continue;
                if (e.getKey().name().equals("successful-reauthentication-total")) ok += (Double) v;
                if (e.getKey().name().equals("failed-reauthentication-total")) failed += (Double) v;
            }
            System.out.println("{\"acked\":" + acked + ",\"reauth_ok\":" + ok + ",\"reauth_failed\":" + failed + "}");
        } catch (Exception e) {
            Throwable t = e.getCause() == null ? e : e.getCause();
            System.out.println("{\"error\":\"" + (t.getClass().getName() + ": " + t.getMessage()).replace("\"", "'") + "\"}");
        }
        System.exit(0);
    }
}
