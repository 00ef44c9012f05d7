// Java Kafka client 3.9.1 over a secured listener: produces COUNT records to partition 0 of TOPIC, then
// reads them back. Extra client properties (security.protocol, ssl.*, sasl.*) come as key=value args.
// Prints one JSON line: {"acked":N,"values":[...]} or {"error":"<exception class>: <message>"} (exit 0
// either way, so a test can assert on the refusal the client reports).
//
// usage: java -cp '.tools/jars/*' SecureRoundTrip.java BOOTSTRAP TOPIC COUNT [key=value...]
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class SecureRoundTrip {
    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        int count = Integer.parseInt(args[2]);
        Properties extra = new Properties();
        for (int i = 3; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            extra.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        try {
            Properties pp = new Properties();
            pp.putAll(extra);
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20000);
            pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
            pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 20000);
            int acked = 0;
            try (Producer<byte[], byte[]> p = new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
                List<Future<RecordMetadata>> fs = new ArrayList<>();
                for (int i = 0; i < count; i++) {
                    fs.add(p.send(new ProducerRecord<>(topic, 0, null, ("secure-" + i).getBytes(StandardCharsets.UTF_8))));
                }
                p.flush();
                for (Future<RecordMetadata> f : fs) { f.get(); acked++; }
            }
            Properties cp = new Properties();
            cp.putAll(extra);
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            List<String> values = new ArrayList<>();
            try (Consumer<byte[], byte[]> c = new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                TopicPartition tp = new TopicPartition(topic, 0);
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                long deadline = System.currentTimeMillis() + 30000;
                while (values.size() < count && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                        values.add(new String(r.value(), StandardCharsets.UTF_8));
                    }
                }
            }
            StringBuilder out = new StringBuilder("{\"acked\":" + acked + ",\"values\":[");
            for (int i = 0; i < values.size(); i++) out.append(i == 0 ? "" : ",").append(q(values.get(i)));
            System.out.println(out.append("]}"));
        } catch (Exception e) {
            Throwable t = e;
            while ((t instanceof java.util.concurrent.ExecutionException || t instanceof org.apache.kafka.common.KafkaException)
                    && t.getCause() != null && !(t instanceof org.apache.kafka.common.errors.AuthenticationException)) {
                t = t.getCause();
            }
            System.out.println("{\"error\":" + q(t.getClass().getName() + ": " + t.getMessage()) + "}");
        }
        System.exit(0);
    }
}
