// Java Kafka client 3.9.1 views of the partition-leader side of transactions. Prints one JSON line.
//
// usage: java -cp '.tools/jars/*' TxnLeader.java consume BOOTSTRAP TOPIC ISOLATION
//          reads partition 0 from the beginning up to its end offset for ISOLATION (read_committed:
//          the last stable offset): {"records":[{"offset":o,"value":v},...],"position":p}
//        java -cp '.tools/jars/*' TxnLeader.java producers BOOTSTRAP TOPIC
//          Admin.describeProducers of partition 0:
//          {"producers":[{"id":i,"epoch":e,"last_sequence":s,"coordinator_epoch":c,"txn_start":t},...]}
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class TxnLeader {
    public static void main(String[] args) throws Exception {
        String mode = args[0], bootstrap = args[1], topic = args[2];
        TopicPartition tp = new TopicPartition(topic, 0);
        if (mode.equals("consume")) {
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, args[3]);
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            StringBuilder out = new StringBuilder("{\"records\":[");
            long position;
            try (Consumer<byte[], byte[]> c = new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                long end = c.endOffsets(List.of(tp), Duration.ofSeconds(60)).get(tp);
                long deadline = System.currentTimeMillis() + 60000;
                boolean first = true;
                while (c.position(tp, Duration.ofSeconds(60)) < end && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                        if (!first) out.append(',');
                        first = false;
                        out.append("{\"offset\":").append(r.offset()).append(",\"value\":\"")
                            .append(new String(r.value(), StandardCharsets.UTF_8)).append("\"}");
                    }
                }
                position = c.position(tp, Duration.ofSeconds(60));
                if (position < end) throw new RuntimeException("position " + position + " below end " + end);
            }
            out.append("],\"position\":").append(position).append('}');
            System.out.println(out);
        } else {
            Properties ap = new Properties();
            ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            try (Admin admin = Admin.create(ap)) {
                DescribeProducersResult.PartitionProducerState st = admin.describeProducers(List.of(tp)).partitionResult(tp).get();
                StringBuilder out = new StringBuilder("{\"producers\":[");
                boolean first = true;
                for (ProducerState p : st.activeProducers()) {
                    if (!first) out.append(',');
                    first = false;
                    out.append("{\"id\":").append(p.producerId())
                        .append(",\"epoch\":").append(p.producerEpoch())
                        .append(",\"last_sequence\":").append(p.lastSequence())
                        .append(",\"coordinator_epoch\":").append(p.coordinatorEpoch().orElse(-1))
                        .append(",\"txn_start\":").append(p.currentTransactionStartOffset().orElse(-1L))
                        .append('}');
                }
                System.out.println(out.append("]}"));
            }
        }
    }
}
