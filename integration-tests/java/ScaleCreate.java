// Creates many topics with one Java Admin client (the partition-scale benchmark, issue 12).
//
// usage: java -cp '.tools/jars/*' ScaleCreate.java BOOTSTRAP PREFIX TOPICS PARTITIONS RF BATCH
// Topics are PREFIX00000.. ; BATCH topics per createTopics call (the Admin client sends each
// call as one CreateTopics request to the controller), calls issued back to back and awaited
// together. Prints one JSON line: {"created":N,"errors":E,"admin_ms":T,"first_error":...}
// where admin_ms is from the first call to the last future completing (JVM start excluded).
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.KafkaFuture;

public class ScaleCreate {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], prefix = args[1];
        int topics = Integer.parseInt(args[2]);
        int partitions = Integer.parseInt(args[3]);
        short rf = Short.parseShort(args[4]);
        int batch = Integer.parseInt(args[5]);
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 600000);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 300000);
        try (Admin admin = Admin.create(props)) {
            // Connect and learn the controller first, so admin_ms is the creation alone.
            admin.describeCluster().controller().get();
            long t0 = System.nanoTime();
            List<KafkaFuture<Void>> futures = new ArrayList<>();
            for (int i = 0; i < topics; i += batch) {
                List<NewTopic> nts = new ArrayList<>();
                for (int j = i; j < Math.min(topics, i + batch); j++) {
                    nts.add(new NewTopic(String.format("%s%05d", prefix, j), partitions, rf));
                }
                futures.addAll(admin.createTopics(nts).values().values());
            }
            int errors = 0;
            String first = null;
            for (KafkaFuture<Void> f : futures) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    errors++;
                    if (first == null) first = String.valueOf(e.getCause());
                }
            }
            long ms = (System.nanoTime() - t0) / 1_000_000;
            System.out.println("{\"created\":" + (futures.size() - errors) + ",\"errors\":" + errors
                + ",\"admin_ms\":" + ms + ",\"first_error\":"
                + (first == null ? "null" : "\"" + first.replace("\"", "'") + "\"") + "}");
        }
    }
}
